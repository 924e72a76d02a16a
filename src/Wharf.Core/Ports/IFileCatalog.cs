using Wharf.Core.Files;

namespace Wharf.Core.Ports;

/// <summary>File metadata. Every call is scoped to one workspace, except the sweeper's.</summary>
public interface IFileCatalog
{
    /// <summary>
    /// Writes the row and adds its bytes to the workspace's usage, in one transaction. Writes nothing, and says why,
    /// when that would take the workspace over its storage quota or the workspace is deleted. A file of a workspace
    /// that has no row is inserted without a quota.
    /// </summary>
    Task<FileInsertOutcome> InsertAsync(FileRecord file, CancellationToken cancellationToken);

    Task<FileRecord?> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken);

    /// <summary>One keyset page: cost grows with the page, not with the workspace.</summary>
    Task<Page<FileRecord>> ListAsync(FileListQuery query, CancellationToken cancellationToken);

    /// <summary>Removes the row and subtracts its bytes from the workspace's usage; false when there was none.</summary>
    Task<bool> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken);

    /// <summary>Files whose <c>expires_at</c> is at or before <paramref name="nowUnixSeconds"/>, oldest first.</summary>
    Task<IReadOnlyList<FileRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken);

    /// <summary>
    /// Sets the SHA-256 of a file that had none yet; false when the file is gone or already had one. Usage and
    /// everything else about the file are unchanged.
    /// </summary>
    Task<bool> SetSha256Async(string workspaceId, string fileId, string sha256, CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="max"/> files, in any workspace, whose SHA-256 is still to be computed and that no claim
    /// holds at <paramref name="nowUnixMilliseconds"/> (<see cref="ClaimHashingAsync"/>), in id order after
    /// <paramref name="afterId"/> (null: from the first).
    /// </summary>
    Task<IReadOnlyList<FileRecord>> ListUnhashedAsync(string? afterId, int max, long nowUnixMilliseconds, CancellationToken cancellationToken);

    /// <summary>
    /// Claims the computing of a file's SHA-256 for <paramref name="owner"/> until <paramref name="untilUnixMilliseconds"/>,
    /// so that one node at a time reads it: true when the file still has no SHA-256 and no claim, or its claim ran out
    /// (its deadline at or before <paramref name="nowUnixMilliseconds"/>), or <paramref name="owner"/> holds it already
    /// (the deadline is then moved: this is also how a claim is renewed, or kept past a failure to rest the file).
    /// False, and nothing changed, when another owner's claim holds, the file has its SHA-256, or it is gone.
    /// </summary>
    Task<bool> ClaimHashingAsync(string workspaceId, string fileId, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken);

    /// <summary>Gives up <paramref name="owner"/>'s claim on a file (at shutdown), so another node may hash it at once.</summary>
    Task ReleaseHashingAsync(string workspaceId, string fileId, string owner, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="fileIds"/> have a row, in any workspace.</summary>
    Task<IReadOnlySet<string>> FindExistingAsync(IReadOnlyCollection<string> fileIds, CancellationToken cancellationToken);

    /// <summary>Throws when the catalog cannot be used (readiness probe).</summary>
    Task CheckAsync(CancellationToken cancellationToken);
}

/// <summary>How a catalog insert that counts against the workspace's usage ended.</summary>
public enum FileInsertOutcome
{
    Inserted,

    /// <summary>It would take the workspace's usage over its storage quota; nothing was written.</summary>
    QuotaExceeded,

    /// <summary>The workspace was deleted (while the request ran); nothing was written.</summary>
    WorkspaceDeleted,
}
