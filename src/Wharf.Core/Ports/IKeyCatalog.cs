using Wharf.Core.Auth;
using Wharf.Core.Files;

namespace Wharf.Core.Ports;

/// <summary>API keys. Deleting a key is revocation: the next request with it fails.</summary>
public interface IKeyCatalog
{
    /// <summary>One indexed lookup by hash; null unless the key exists and its workspace is not deleted.</summary>
    Task<KeyLookup?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken);

    Task<bool> AnyKeyAsync(CancellationToken cancellationToken);

    Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken);

    /// <summary>The keys of a workspace, oldest first.</summary>
    Task<IReadOnlyList<ApiKeyRecord>> ListKeysAsync(string workspaceId, CancellationToken cancellationToken);

    /// <summary>Removes the key; false when there was none.</summary>
    Task<bool> DeleteKeyAsync(string keyId, CancellationToken cancellationToken);

    /// <summary>Records when keys were last used (unix seconds), in one write.</summary>
    Task TouchKeysAsync(IReadOnlyCollection<KeyValuePair<string, long>> lastUsed, CancellationToken cancellationToken);
}

/// <summary>Workspaces. A deleted workspace is invisible at once; the sweeper then removes its files.</summary>
public interface IWorkspaceCatalog
{
    /// <summary>Writes a new workspace; <paramref name="webhookSecret"/> signs its webhook events when it has a URL.</summary>
    Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? webhookSecret = null);

    /// <summary>A live workspace, with its current usage; null when unknown or deleted.</summary>
    Task<Workspace?> GetWorkspaceAsync(string workspaceId, CancellationToken cancellationToken);

    Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken);

    /// <summary>Live workspaces in id order after <paramref name="after"/>.</summary>
    Task<Page<Workspace>> ListWorkspacesAsync(int limit, string? after, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the workspace's name, limits and webhook URL; false when it is unknown or deleted. A null URL removes the
    /// secret with it; <paramref name="newWebhookSecret"/> replaces the secret (null: the URL keeps its secret).
    /// </summary>
    Task<bool> UpdateWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? newWebhookSecret = null);

    /// <summary>Marks it deleted and removes its keys, in one transaction; false when unknown or already deleted.</summary>
    Task<bool> DeleteWorkspaceAsync(string workspaceId, long deletedAt, CancellationToken cancellationToken);

    /// <summary>Deleted workspaces whose rows are still there (their files may still be there too).</summary>
    Task<IReadOnlyList<string>> ListDeletedWorkspacesAsync(int max, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a deleted workspace purged once it holds no file (it then leaves <see cref="ListDeletedWorkspacesAsync"/>);
    /// false when files remain. The row itself stays, so no late insert can bring the workspace back.
    /// </summary>
    Task<bool> PurgeWorkspaceAsync(string workspaceId, CancellationToken cancellationToken);
}
