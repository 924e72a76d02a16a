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
    /// Up to <paramref name="max"/> files, in any workspace, whose SHA-256 is still to be computed, in id order after
    /// <paramref name="afterId"/> (null: from the first).
    /// </summary>
    Task<IReadOnlyList<FileRecord>> ListUnhashedAsync(string? afterId, int max, CancellationToken cancellationToken);

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
