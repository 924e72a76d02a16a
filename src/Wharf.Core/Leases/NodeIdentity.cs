using System.Security.Cryptography;

namespace Wharf.Core.Leases;

/// <summary>
/// This process as an owner of leases in the catalog (<c>node_</c> + 16 random hex digits), new at every start: a
/// restarted node does not inherit what its previous run held, which runs out or was released.
/// </summary>
public sealed class NodeIdentity
{
    public string Id { get; } = "node_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
