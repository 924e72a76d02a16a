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
public sealed record Workspace(string Id, string Name, long CreatedAt);

/// <summary>An API key as stored: the hash, never the secret.</summary>
public sealed record ApiKeyRecord
{
    public required string Id { get; init; }
    public required string WorkspaceId { get; init; }
    public required string Name { get; init; }
    public required byte[] Hash { get; init; }
    public required string Prefix { get; init; }
    public required long CreatedAt { get; init; }
}
