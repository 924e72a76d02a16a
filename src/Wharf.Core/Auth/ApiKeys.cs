using System.Security.Cryptography;
using System.Text;

namespace Wharf.Core.Auth;

/// <summary>Secret API keys: <c>sk-wh-</c> + 40 base62 characters, kept only as SHA-256 hashes.</summary>
public static class ApiKeys
{
    public const string SecretPrefix = "sk-wh-";
    public const int SecretRandomLength = 40;
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string NewSecret() => SecretPrefix + RandomNumberGenerator.GetString(Alphabet, SecretRandomLength);

    /// <summary>SHA-256 of the key's UTF-8 bytes. Keys are long random strings, so a plain hash is enough.</summary>
    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>A short, non-secret prefix to recognise a key by (e.g. <c>sk-wh-AbC1…</c>).</summary>
    public static string DisplayPrefix(string secret) =>
        secret.StartsWith(SecretPrefix, StringComparison.Ordinal) && secret.Length == SecretPrefix.Length + SecretRandomLength
            ? secret[..(SecretPrefix.Length + 4)] + "…"
            : "…";
}

/// <summary>A workspace: the owner of files, keys and everything else.</summary>
public sealed record Workspace
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required long CreatedAt { get; init; }
    /// <summary>Most bytes its files may hold; null for no limit.</summary>
    public long? StorageQuotaBytes { get; init; }
    /// <summary>Requests per minute for each of its keys (unless the key has its own); null for the default.</summary>
    public int? RateLimitRpm { get; init; }
    /// <summary>Bytes held by its files now; kept by the catalog on upload, delete and expiry.</summary>
    public long UsageBytes { get; init; }
    /// <summary>The upstream providers its requests may reach, by id; null for every configured one.</summary>
    public IReadOnlyList<string>? AllowedProviders { get; init; }
    /// <summary>
    /// Where its webhook events are POSTed (set by the admin only); null for none. The secret that signs them is kept
    /// by the catalog apart from this record, which requests carry.
    /// </summary>
    public string? WebhookUrl { get; init; }
}

/// <summary>An API key as stored: the hash, never the secret.</summary>
public sealed record ApiKeyRecord
{
    public required string Id { get; init; }
    public required string WorkspaceId { get; init; }
    public required string Name { get; init; }
    public required byte[] Hash { get; init; }
    public required string Prefix { get; init; }
    public required long CreatedAt { get; init; }
    /// <summary>Its scopes; <see cref="ApiScopes.Every"/> alone for every scope, those added later included.</summary>
    public IReadOnlyList<string> Scopes { get; init; } = [ApiScopes.Every];
    /// <summary>Unix seconds after which the key no longer works; null for never.</summary>
    public long? ExpiresAt { get; init; }
    /// <summary>Requests per minute for this key; null to use the workspace's or the default.</summary>
    public int? RateLimitRpm { get; init; }
    /// <summary>Unix seconds of the last request, recorded at most every flush interval.</summary>
    public long? LastUsedAt { get; init; }
}

/// <summary>A live key together with its (live) workspace.</summary>
public sealed record KeyLookup(ApiKeyRecord Key, Workspace Workspace);

/// <summary>What a key may do. A key without a scope gets 403 on the routes that need it.</summary>
public static class ApiScopes
{
    public const string FilesRead = "files:read";
    public const string FilesWrite = "files:write";
    public const string BatchesRead = "batches:read";
    public const string BatchesWrite = "batches:write";
    public const string ModelsInvoke = "models:invoke";

    /// <summary>Stored for a key created without explicit scopes: every scope, also those added later.</summary>
    public const string Every = "*";

    public static readonly IReadOnlyList<string> All = [FilesRead, FilesWrite, BatchesRead, BatchesWrite, ModelsInvoke];

    public static bool IsKnown(string scope) => All.Contains(scope);

    /// <summary>Whether a key with <paramref name="scopes"/> holds <paramref name="scope"/>.</summary>
    public static bool Allows(IReadOnlyList<string> scopes, string scope) => scopes.Contains(Every) || scopes.Contains(scope);

    /// <summary>The scopes a key holds today, <see cref="Every"/> spelled out.</summary>
    public static IReadOnlyList<string> Expand(IReadOnlyList<string> scopes) => scopes.Contains(Every) ? All : scopes;
}
