using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Wharf.Core.Ports;

namespace Wharf.Storage.S3;

/// <summary>
/// Turns a failed S3 call into the port's exceptions: a store out of room or over its quota is an
/// <see cref="InsufficientStorageException"/>, anything else a <see cref="BlobStoreException"/>. A cancelled request
/// stays an <see cref="OperationCanceledException"/>.
/// </summary>
internal static class S3Failures
{
    public static async Task<T> CallAsync<T>(Func<Task<T>> call, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Wrap(ex, what);
        }
    }

    public static async Task CallAsync(Func<Task> call, string what, CancellationToken cancellationToken)
    {
        try
        {
            await call();
        }
        catch (Exception ex) when (IsStoreFailure(ex, cancellationToken))
        {
            throw Wrap(ex, what);
        }
    }

    /// <summary>A failure of the store or of the way to it; a cancellation asked for by the caller is not one.</summary>
    public static bool IsStoreFailure(Exception ex, CancellationToken cancellationToken) =>
        ex is AmazonServiceException or AmazonClientException or HttpRequestException or IOException
        || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    public static Exception Wrap(Exception ex, string what) => IsNoRoom(ex)
        ? new InsufficientStorageException($"The S3 store has no room left (or the bucket's quota is used up) to {what}.", ex)
        : new BlobStoreException($"The S3 blob store failed to {what}: {Describe(ex)}", ex);

    /// <summary>Whether the store answered that the call is not one it implements (some S3-compatible stores lack a few).</summary>
    public static bool IsNotImplemented(AmazonS3Exception ex) =>
        ex.StatusCode is HttpStatusCode.NotImplemented or HttpStatusCode.MethodNotAllowed
        || ex.ErrorCode is "NotImplemented" or "MethodNotAllowed";

    public static bool IsNotFound(AmazonS3Exception ex) =>
        ex.StatusCode == HttpStatusCode.NotFound || ex.ErrorCode is "NoSuchKey" or "NotFound";

    /// <summary>
    /// HTTP 507, and the codes stores give for a full disk or a used-up quota (MinIO, Ceph RGW); AWS S3 itself has no
    /// such limit.
    /// </summary>
    private static bool IsNoRoom(Exception ex) => ex is AmazonS3Exception s3
        && (s3.StatusCode == HttpStatusCode.InsufficientStorage
            || s3.ErrorCode is "QuotaExceeded" or "XMinioStorageFull" or "XMinioAdminBucketQuotaExceeded" or "StorageFull");

    /// <summary>What went wrong, without anything secret: the store's error code and status, or the exception's type.</summary>
    public static string Describe(Exception ex) => ex switch
    {
        AmazonS3Exception s3 when s3.ErrorCode is { Length: > 0 } => $"{s3.ErrorCode} ({(int)s3.StatusCode}): {s3.Message}",
        AmazonServiceException service => $"{(int)service.StatusCode}: {service.Message}",
        _ => ex.GetBaseException().Message,
    };
}
