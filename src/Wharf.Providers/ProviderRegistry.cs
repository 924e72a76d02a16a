using System.Collections.Frozen;
using Wharf.Core.Ports;

namespace Wharf.Providers;

/// <summary>The providers of this node, by id; built once at start.</summary>
internal sealed class ProviderRegistry(IEnumerable<IProvider> providers) : IProviderRegistry
{
    private readonly FrozenDictionary<string, IProvider> _byId =
        providers.ToFrozenDictionary(p => p.Id, StringComparer.Ordinal);

    public bool TryGet(string id, out IProvider provider) => _byId.TryGetValue(id, out provider!);
}
