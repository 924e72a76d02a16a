using Wharf.Core.Auth;

namespace Wharf.Core.Ports;

/// <summary>Workspaces and their API keys.</summary>
public interface IKeyCatalog
{
    /// <summary>One indexed lookup by hash; null when no key has it.</summary>
    Task<ApiKeyRecord?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken);

    Task<bool> AnyKeyAsync(CancellationToken cancellationToken);

    Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken);

    Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken);

    Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken);
}
