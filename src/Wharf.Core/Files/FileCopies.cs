namespace Wharf.Core.Files;

/// <summary>
/// A provider's copy of a Wharf file: the upstream's id for it. Wharf's id stays the file's id everywhere; the
/// upstream id is only sent to that provider.
/// </summary>
public sealed record FileCopy(string WorkspaceId, string FileId, string Provider, string UpstreamId, long CreatedAt);

/// <summary>
/// An upstream copy that no file needs any more (its file was deleted, or its record could not be written): to be
/// deleted at the provider, retried with backoff until the provider confirms (a 404 counts as deleted).
/// </summary>
public sealed record UpstreamDeletion(string Provider, string UpstreamId, string FileId, int Attempts, long NextAttemptAt);

/// <summary>
/// A copy being made, recorded before the bytes go upstream and removed with the write that records the copy (or
/// when the upstream refused). One left behind means the process stopped between the upstream's answer and that
/// write: the upstream may hold a copy no record names, which the sweeper looks for by name, size and time.
/// </summary>
public sealed record CopyIntent(string FileId, string Provider, string WorkspaceId, string Filename, long Bytes, long StartedAt);
