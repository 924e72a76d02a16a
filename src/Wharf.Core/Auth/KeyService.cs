using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Core.Auth;

/// <summary>Authenticates API keys and makes sure a usable key exists at start.</summary>
public sealed class KeyService(IKeyCatalog catalog, IdGenerator ids, TimeProvider time, ILogger<KeyService> logger)
{
    public const string DefaultWorkspaceName = "default";

    /// <summary>The key's record when <paramref name="secret"/> is a valid key: one hash and one indexed lookup.</summary>
    public async Task<ApiKeyRecord?> AuthenticateAsync(string secret, CancellationToken cancellationToken)
    {
        byte[] hash = ApiKeys.Hash(secret);
        var key = await catalog.FindKeyByHashAsync(hash, cancellationToken);
        return key is not null && CryptographicOperations.FixedTimeEquals(key.Hash, hash) ? key : null;
    }

    /// <summary>
    /// With a bootstrap key: makes sure the <c>default</c> workspace exists and holds that key (idempotent).
    /// Without one and with no key at all: creates a key in <c>default</c> and returns its secret, once.
    /// </summary>
    public async Task<string?> BootstrapAsync(string? bootstrapKey, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(bootstrapKey))
        {
            if (await catalog.AnyKeyAsync(cancellationToken))
            {
                return null;
            }
            string secret = ApiKeys.NewSecret();
            await AddKeyAsync(secret, "generated", cancellationToken);
            return secret;
        }

        if (await catalog.FindKeyByHashAsync(ApiKeys.Hash(bootstrapKey), cancellationToken) is null)
        {
            await AddKeyAsync(bootstrapKey, "bootstrap", cancellationToken);
            logger.LogInformation("Bootstrap key added to workspace '{Workspace}'.", DefaultWorkspaceName);
        }
        return null;
    }

    private async Task AddKeyAsync(string secret, string name, CancellationToken cancellationToken)
    {
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var workspace = await catalog.FindWorkspaceByNameAsync(DefaultWorkspaceName, cancellationToken);
        if (workspace is null)
        {
            workspace = new Workspace(WharfIds.Hex(WharfIds.WorkspacePrefix, ids.Next()), DefaultWorkspaceName, now);
            await catalog.InsertWorkspaceAsync(workspace, cancellationToken);
        }
        await catalog.InsertKeyAsync(new ApiKeyRecord
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
