using Amazon;
using Amazon.Runtime;
using Amazon.S3;

namespace Wharf.Storage.S3;

/// <summary>Builds the SDK client for <see cref="S3StorageOptions"/>, set up to work with any S3-compatible store.</summary>
internal static class S3ClientFactory
{
    public static AmazonS3Client Create(S3StorageOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            // Checksums only where S3 requires them: the new default (a CRC on every upload) is refused or stored wrongly
            // by several S3-compatible stores. The bytes are still signed (plain http) or sent over TLS, and Wharf keeps
            // its own SHA-256 of every blob.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            // Covers a request up to its answer's headers (a download's body is read afterwards, at the client's pace);
            // a server-side copy of a few GiB answers within it.
            Timeout = TimeSpan.FromMinutes(5),
        };
        if (!string.IsNullOrWhiteSpace(options.ServiceUrl))
        {
            config.ServiceURL = options.ServiceUrl;
            config.AuthenticationRegion = string.IsNullOrWhiteSpace(options.Region) ? "us-east-1" : options.Region;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }
        var client = string.IsNullOrEmpty(options.AccessKey)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), config);
        client.BeforeRequestEvent += KeepCopySourceSlashes;
        return client;
    }

    /// <summary>
    /// A copy's <c>x-amz-copy-source</c> (<c>bucket/key</c>) is sent with its slashes as they are, the form every
    /// S3-compatible store reads: the SDK encodes them (<c>%2F</c>), which AWS S3 accepts but some stores do not decode
    /// (they answer NoSuchBucket). Raised before the request is signed, so the signature covers the header as sent.
    /// </summary>
    private static void KeepCopySourceSlashes(object sender, RequestEventArgs e)
    {
        const string Header = "x-amz-copy-source";
        if (e is WebServiceRequestEventArgs { Headers: { } headers } && headers.TryGetValue(Header, out string? source))
        {
            headers[Header] = source.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        }
    }
}
