using Microsoft.Extensions.Options;

namespace Wharf.Storage.S3;

/// <summary>
/// <c>Wharf:Storage:S3</c>: the bucket of an S3-compatible store (AWS S3, Cloudflare R2, MinIO, Ceph, ...) that holds
/// the blobs when <c>Wharf:Storage:Blobs</c> is <c>s3</c>.
/// </summary>
public sealed class S3StorageOptions
{
    public const string Section = "Wharf:Storage:S3";

    /// <summary>The store's endpoint (e.g. <c>https://ACCOUNT.r2.cloudflarestorage.com</c>); null for AWS S3 itself.</summary>
    public string? ServiceUrl { get; set; }

    public string? Bucket { get; set; }

    /// <summary>The region requests are signed for (AWS: where the bucket is); <c>us-east-1</c> when a ServiceUrl is set without one.</summary>
    public string? Region { get; set; }

    /// <summary>With <see cref="SecretKey"/>; when both are unset, the SDK's usual sources (environment, instance profile) are used.</summary>
    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }

    /// <summary>Addresses the bucket in the path (<c>host/bucket/key</c>) instead of the host name: most stores other than AWS need it.</summary>
    public bool ForcePathStyle { get; set; }

    /// <summary>A key prefix under which Wharf keeps everything (e.g. <c>wharf/</c>), so that it can share a bucket.</summary>
    public string? Prefix { get; set; }

    /// <summary>The prefix as keys use it: empty, or ending with one <c>/</c>.</summary>
    internal string KeyPrefix => string.IsNullOrEmpty(Prefix) ? "" : Prefix.TrimEnd('/') + "/";

    /// <summary>Where the store is, for messages: the ServiceUrl, else the AWS region (never a credential).</summary>
    internal string Location => ServiceUrl ?? $"AWS S3 in {Region ?? "the default region"}";
}

/// <summary>Checks <see cref="S3StorageOptions"/> at start; each message names the setting to fix.</summary>
internal sealed class S3StorageOptionsValidation : IValidateOptions<S3StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, S3StorageOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Bucket))
        {
            failures.Add($"{S3StorageOptions.Section}:Bucket is required when Wharf:Storage:Blobs is s3.");
        }
        if (options.ServiceUrl is { } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            failures.Add($"{S3StorageOptions.Section}:ServiceUrl must be an absolute http or https URL.");
        }
        if (string.IsNullOrWhiteSpace(options.ServiceUrl) && string.IsNullOrWhiteSpace(options.Region))
        {
            failures.Add($"{S3StorageOptions.Section}:ServiceUrl (any S3-compatible store) or {S3StorageOptions.Section}:Region (AWS S3) is required.");
        }
        if (string.IsNullOrEmpty(options.AccessKey) != string.IsNullOrEmpty(options.SecretKey))
        {
            failures.Add($"{S3StorageOptions.Section}:AccessKey and {S3StorageOptions.Section}:SecretKey are set together or not at all.");
        }
        if (options.Prefix is { Length: > 0 } prefix
            && (prefix.StartsWith('/') || prefix.Contains("//", StringComparison.Ordinal) || prefix.Length > 512 || prefix.Any(char.IsControl)))
        {
            failures.Add($"{S3StorageOptions.Section}:Prefix must not start with '/', hold '//' or control characters, or exceed 512 characters.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
