using System.ComponentModel.DataAnnotations;

namespace Wharf.Core.Files;

/// <summary>Options under <c>Wharf:Files</c>.</summary>
public sealed class FilesOptions
{
    public const string Section = "Wharf:Files";

    /// <summary>Largest file accepted by <c>POST /v1/files</c>, in bytes (default 512 MB).</summary>
    [Range(1, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>Page size of <c>GET /v1/files</c> when <c>limit</c> is not given.</summary>
    [Range(1, int.MaxValue)]
    public int DefaultListLimit { get; set; } = 10_000;

    /// <summary>Largest <c>limit</c> accepted by <c>GET /v1/files</c>.</summary>
    [Range(1, int.MaxValue)]
    public int MaxListLimit { get; set; } = 10_000;

    /// <summary>
    /// An upload whose parts were not hashed in the listed order while they streamed (parallel parts start in any
    /// order) and that holds at most this many bytes is hashed when it is completed (about 45 ms per 64 MB on one
    /// core). A larger one is completed at once and gets its SHA-256 from a background pass: its file object shows
    /// <c>sha256: null</c> (and its content no ETag) until then. Default 64 MiB; 0 defers every such upload.
    /// </summary>
    [Range(0, long.MaxValue)]
    public long HashAtCompletionMaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Most uploads (Uploads API) a workspace may have pending at once; creating one more answers 403
    /// <c>too_many_pending_uploads</c> until one is completed, cancelled or expired. Each pending upload holds disk
    /// (its parts, counted against the quota) and, on the node that receives its parts, a running hash; this bounds
    /// both per workspace.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxPendingUploadsPerWorkspace { get; set; } = 100;

    /// <summary>
    /// On a blob store several nodes share (S3), how long a deleted file's bytes stay in the store, in seconds: a
    /// download any node started before the delete has this long to finish. Unused on a node's own disk, where the
    /// node knows its own downloads and removes the bytes when the last one ends. Default one hour.
    /// </summary>
    [Range(0, 7 * 86_400)]
    public int DeletedContentGraceSeconds { get; set; } = 3600;

    /// <summary>
    /// Purposes accepted beyond OpenAI's (e.g. GateFlow's <c>document</c>). Strict clients such as the official
    /// .NET SDK fail on a list page that holds a purpose they do not know.
    /// </summary>
    public List<string> ExtraPurposes { get; set; } = [];
}
