namespace Wharf.Core.Ports;

/// <summary>What the workspaces hold, read for the operator's metrics.</summary>
public interface IWorkspaceUsageReader
{
    /// <summary>
    /// The live workspaces that hold the most bytes (their usage, as the storage quota counts it), at most
    /// <paramref name="max"/>, largest first (ties by id), each with its number of files.
    /// </summary>
    Task<IReadOnlyList<WorkspaceStorage>> ListLargestAsync(int max, CancellationToken cancellationToken);
}

/// <summary>One workspace's bytes (its usage) and files.</summary>
public sealed record WorkspaceStorage(string WorkspaceId, long Bytes, long Files);
