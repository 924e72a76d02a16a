using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Webhooks;

namespace Wharf.Core.Tenancy;

/// <summary>A change to a workspace: a null field is left as it is; <c>Clear*</c> removes a limit.</summary>
public sealed record WorkspaceChange
{
    public string? Name { get; init; }
    public long? StorageQuotaBytes { get; init; }
    public bool ClearStorageQuota { get; init; }
    public int? RateLimitRpm { get; init; }
    public bool ClearRateLimit { get; init; }
    public IReadOnlyList<string>? AllowedProviders { get; init; }
    /// <summary>Every configured provider again (an explicit null).</summary>
    public bool ClearAllowedProviders { get; init; }
    /// <summary>A webhook URL to set: a new secret comes with it, even when the URL is the one already set.</summary>
    public string? WebhookUrl { get; init; }
    /// <summary>No webhook any more (an explicit null): the URL and its secret are removed.</summary>
    public bool ClearWebhookUrl { get; init; }
}

/// <summary>
/// A workspace as the admin API wrote it, with the webhook secret made by this write when it set a URL: shown in
/// this answer only (the catalog keeps it to sign events; no other answer carries it).
/// </summary>
public sealed record WrittenWorkspace(Workspace Workspace, string? WebhookSecret);

/// <summary>A new API key's settings.</summary>
public sealed record KeyRequest
{
    public string? Name { get; init; }
    public IReadOnlyList<string>? Scopes { get; init; }
    public long? ExpiresAt { get; init; }
    public int? RateLimitRpm { get; init; }
}

/// <summary>A key just created: its record and its secret, which is shown this once.</summary>
public sealed record CreatedKey(ApiKeyRecord Key, string Secret);

/// <summary>The admin API: workspaces and their keys.</summary>
public sealed class WorkspaceService(IWorkspaceCatalog workspaces, IKeyCatalog keys, KeyCache keyCache, IdGenerator ids, TimeProvider time, IProviderRegistry providers)
{
    public const int MaxNameLength = 128;
    public const int MaxListLimit = 100;

    public static WharfError NoSuchWorkspace(string id) => new(404, $"No such Workspace object: {id}", "id");

    public static WharfError NoSuchKey(string id) => new(404, $"No such API key: {id}", "id");

    public async Task<Result<Workspace>> CreateAsync(
        string? name, long? storageQuotaBytes, int? rateLimitRpm, CancellationToken cancellationToken, IReadOnlyList<string>? allowedProviders = null)
    {
        var created = await CreateAsync(new WorkspaceChange
        {
            Name = name,
            StorageQuotaBytes = storageQuotaBytes,
            RateLimitRpm = rateLimitRpm,
            AllowedProviders = allowedProviders,
        }, cancellationToken);
        return created.IsOk ? created.Value.Workspace : created.Error;
    }

    /// <summary>A new workspace from <paramref name="fields"/> (its <c>Clear*</c> flags mean nothing here).</summary>
    public async Task<Result<WrittenWorkspace>> CreateAsync(WorkspaceChange fields, CancellationToken cancellationToken)
    {
        var error = CheckName(fields.Name) ?? CheckQuota(fields.StorageQuotaBytes) ?? CheckRpm(fields.RateLimitRpm)
            ?? CheckProviders(fields.AllowedProviders) ?? CheckWebhookUrl(fields.WebhookUrl);
        if (error is not null)
        {
            return error;
        }
        var workspace = new Workspace
        {
            Id = WharfIds.Hex(WharfIds.WorkspacePrefix, ids.Next()),
            Name = fields.Name!,
            CreatedAt = time.GetUtcNow().ToUnixTimeSeconds(),
            StorageQuotaBytes = fields.StorageQuotaBytes,
            RateLimitRpm = fields.RateLimitRpm,
            AllowedProviders = Distinct(fields.AllowedProviders),
            WebhookUrl = fields.WebhookUrl,
        };
        string? secret = fields.WebhookUrl is null ? null : WebhookSecrets.NewSecret();
        await workspaces.InsertWorkspaceAsync(workspace, cancellationToken, secret);
        return new WrittenWorkspace(workspace, secret);
    }

    public async Task<Result<Page<Workspace>>> ListAsync(int? limit, string? after, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxListLimit)
        {
            return WharfErrors.Invalid("limit", $"Invalid 'limit': expected an integer between 1 and {MaxListLimit}.", "invalid_limit");
        }
        if (after is not null && !WharfIds.IsHexId(after, WharfIds.WorkspacePrefix))
        {
            return WharfErrors.Invalid("after", "Invalid 'after': expected a workspace id such as 'ws_...'.", "invalid_cursor");
        }
        return await workspaces.ListWorkspacesAsync(limit ?? 20, after, cancellationToken);
    }

    public async Task<Result<Workspace>> GetAsync(string id, CancellationToken cancellationToken) =>
        WharfIds.IsHexId(id, WharfIds.WorkspacePrefix) && await workspaces.GetWorkspaceAsync(id, cancellationToken) is { } workspace
            ? workspace
            : NoSuchWorkspace(id);

    public async Task<Result<Workspace>> UpdateAsync(string id, WorkspaceChange change, CancellationToken cancellationToken)
    {
        var changed = await ChangeAsync(id, change, cancellationToken);
        return changed.IsOk ? changed.Value.Workspace : changed.Error;
    }

    /// <summary>Applies <paramref name="change"/>; the answer holds the new webhook secret when it set a URL.</summary>
    public async Task<Result<WrittenWorkspace>> ChangeAsync(string id, WorkspaceChange change, CancellationToken cancellationToken)
    {
        var current = await GetAsync(id, cancellationToken);
        if (!current.IsOk)
        {
            return current.Error;
        }
        var error = (change.Name is null ? null : CheckName(change.Name)) ?? CheckQuota(change.StorageQuotaBytes) ?? CheckRpm(change.RateLimitRpm)
            ?? CheckProviders(change.AllowedProviders) ?? CheckWebhookUrl(change.WebhookUrl);
        if (error is not null)
        {
            return error;
        }
        var updated = current.Value with
        {
            Name = change.Name ?? current.Value.Name,
            StorageQuotaBytes = change.ClearStorageQuota ? null : change.StorageQuotaBytes ?? current.Value.StorageQuotaBytes,
            RateLimitRpm = change.ClearRateLimit ? null : change.RateLimitRpm ?? current.Value.RateLimitRpm,
            AllowedProviders = change.ClearAllowedProviders ? null : Distinct(change.AllowedProviders) ?? current.Value.AllowedProviders,
            WebhookUrl = change.ClearWebhookUrl ? null : change.WebhookUrl ?? current.Value.WebhookUrl,
        };
        string? secret = change.WebhookUrl is not null && !change.ClearWebhookUrl ? WebhookSecrets.NewSecret() : null;
        if (!await workspaces.UpdateWorkspaceAsync(updated, cancellationToken, secret))
        {
            return NoSuchWorkspace(id);
        }
        keyCache.Clear(); // its keys' rate limit may have changed
        return new WrittenWorkspace(updated, secret);
    }

    /// <summary>Its keys stop working at once; the sweeper removes its files and blobs.</summary>
    public async Task<Result<string>> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        if (!WharfIds.IsHexId(id, WharfIds.WorkspacePrefix)
            || !await workspaces.DeleteWorkspaceAsync(id, time.GetUtcNow().ToUnixTimeSeconds(), cancellationToken))
        {
            return NoSuchWorkspace(id);
        }
        keyCache.Clear();
        return id;
    }

    public async Task<Result<CreatedKey>> CreateKeyAsync(string workspaceId, KeyRequest request, CancellationToken cancellationToken)
    {
        var workspace = await GetAsync(workspaceId, cancellationToken);
        if (!workspace.IsOk)
        {
            return workspace.Error;
        }
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var error = CheckName(request.Name) ?? CheckRpm(request.RateLimitRpm);
        if (error is not null)
        {
            return error;
        }
        if (request.ExpiresAt is { } expiresAt && expiresAt <= now)
        {
            return WharfErrors.Invalid("expires_at", "'expires_at' must be a unix time in the future.", "invalid_expires_at");
        }
        IReadOnlyList<string> scopes = request.Scopes ?? [ApiScopes.Every];
        if (request.Scopes is not null && (scopes.Count == 0 || scopes.FirstOrDefault(s => !ApiScopes.IsKnown(s)) is { } unknown && unknown is not null))
        {
            return WharfErrors.Invalid("scopes", $"Invalid 'scopes': give one or more of {string.Join(", ", ApiScopes.All)}.", "invalid_scopes");
        }
        string secret = ApiKeys.NewSecret();
        var key = new ApiKeyRecord
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, ids.Next()),
            WorkspaceId = workspaceId,
            Name = request.Name!,
            Hash = ApiKeys.Hash(secret),
            Prefix = ApiKeys.DisplayPrefix(secret),
            CreatedAt = now,
            Scopes = [.. scopes.Distinct(StringComparer.Ordinal)],
            ExpiresAt = request.ExpiresAt,
            RateLimitRpm = request.RateLimitRpm,
        };
        await keys.InsertKeyAsync(key, cancellationToken);
        return new CreatedKey(key, secret);
    }

    public async Task<Result<IReadOnlyList<ApiKeyRecord>>> ListKeysAsync(string workspaceId, CancellationToken cancellationToken)
    {
        var workspace = await GetAsync(workspaceId, cancellationToken);
        return workspace.IsOk
            ? Result<IReadOnlyList<ApiKeyRecord>>.From(await keys.ListKeysAsync(workspaceId, cancellationToken))
            : workspace.Error;
    }

    /// <summary>Revocation: the next request with the key fails.</summary>
    public async Task<Result<string>> RevokeKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        if (!WharfIds.IsHexId(keyId, WharfIds.KeyPrefix) || !await keys.DeleteKeyAsync(keyId, cancellationToken))
        {
            return NoSuchKey(keyId);
        }
        keyCache.Clear();
        return keyId;
    }

    private static WharfError? CheckName(string? name) =>
        string.IsNullOrWhiteSpace(name) || name.Length > MaxNameLength || name.Any(char.IsControl)
            ? WharfErrors.Invalid("name", $"'name' is required: 1 to {MaxNameLength} printable characters.", "invalid_name")
            : null;

    private static WharfError? CheckQuota(long? bytes) =>
        bytes is < 0
            ? WharfErrors.Invalid("storage_quota_bytes", "'storage_quota_bytes' must be zero or more.", "invalid_quota")
            : null;

    private static WharfError? CheckRpm(int? rpm) =>
        rpm is < 1 or > 1_000_000
            ? WharfErrors.Invalid("rate_limit_rpm", "'rate_limit_rpm' must be between 1 and 1000000.", "invalid_rate_limit")
            : null;

    private static WharfError? CheckWebhookUrl(string? url) => url is null ? null : WebhookUrls.Check(url);

    /// <summary>Most providers an <c>allowed_providers</c> list may name.</summary>
    public const int MaxAllowedProviders = 64;

    private WharfError? CheckProviders(IReadOnlyList<string>? allowed)
    {
        if (allowed is null)
        {
            return null;
        }
        if (allowed.Count > MaxAllowedProviders)
        {
            return WharfErrors.Invalid("allowed_providers", $"'allowed_providers' may name at most {MaxAllowedProviders} providers.", "invalid_allowed_providers");
        }
        foreach (string id in allowed)
        {
            if (!providers.TryGet(id, out _))
            {
                return WharfErrors.Invalid("allowed_providers", $"Unknown provider '{Json.ClientJson.Printable(id)}' in 'allowed_providers'.", "unknown_provider");
            }
        }
        return null;
    }

    private static IReadOnlyList<string>? Distinct(IReadOnlyList<string>? ids) => ids is null ? null : [.. ids.Distinct(StringComparer.Ordinal)];
}
