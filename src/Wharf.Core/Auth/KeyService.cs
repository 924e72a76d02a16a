using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Core.Auth;

/// <summary>Authenticates API keys and makes sure a usable key exists at start.</summary>
public sealed class KeyService(
    IKeyCatalog keys,
    IWorkspaceCatalog workspaces,
    KeyUsageTracker usage,
    KeyCache cache,
    IdGenerator ids,
    TimeProvider time,
    ILogger<KeyService> logger)
{
    public const string DefaultWorkspaceName = "default";

    /// <summary>
    /// The key and its workspace when <paramref name="secret"/> is a live key of a live workspace: one hash and one
    /// indexed lookup (or a cache hit for a key that authenticated moments ago), so a guess costs the same whatever
    /// it is.
    /// </summary>
    public async Task<KeyLookup?> AuthenticateAsync(string secret, CancellationToken cancellationToken)
    {
        byte[] hash = ApiKeys.Hash(secret);
        var found = cache.Get(hash);
        if (found is null)
        {
            long generation = cache.Generation;
            found = await keys.FindKeyByHashAsync(hash, cancellationToken);
            if (found is not null)
            {
                cache.Set(hash, found, generation);
            }
        }
        if (found is null || !CryptographicOperations.FixedTimeEquals(found.Key.Hash, hash))
        {
            return null;
        }
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        if (found.Key.ExpiresAt is { } expiresAt && expiresAt <= now)
        {
            return null;
        }
        usage.Touch(found.Key.Id, now);
        return found;
    }

    /// <summary>
    /// With a bootstrap key: makes sure the <c>default</c> workspace exists and holds that key (idempotent).
    /// Without one and with no key at all: creates a key in <c>default</c> and returns its secret, once.
    /// </summary>
    public async Task<string?> BootstrapAsync(string? bootstrapKey, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(bootstrapKey))
        {
            if (await keys.AnyKeyAsync(cancellationToken))
            {
                return null;
            }
            string secret = ApiKeys.NewSecret();
            await AddKeyAsync(secret, "generated", cancellationToken);
            return secret;
        }

        if (await keys.FindKeyByHashAsync(ApiKeys.Hash(bootstrapKey), cancellationToken) is null)
        {
            await AddKeyAsync(bootstrapKey, "bootstrap", cancellationToken);
            logger.LogInformation("Bootstrap key added to workspace '{Workspace}'.", DefaultWorkspaceName);
        }
        return null;
    }

    private async Task AddKeyAsync(string secret, string name, CancellationToken cancellationToken)
    {
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var workspace = await workspaces.FindWorkspaceByNameAsync(DefaultWorkspaceName, cancellationToken);
        if (workspace is null)
        {
            workspace = new Workspace { Id = WharfIds.Hex(WharfIds.WorkspacePrefix, ids.Next()), Name = DefaultWorkspaceName, CreatedAt = now };
            await workspaces.InsertWorkspaceAsync(workspace, cancellationToken);
        }
        await keys.InsertKeyAsync(new ApiKeyRecord
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, ids.Next()),
            WorkspaceId = workspace.Id,
            Name = name,
            Hash = ApiKeys.Hash(secret),
            Prefix = ApiKeys.DisplayPrefix(secret),
            CreatedAt = now,
        }, cancellationToken);
    }
}
