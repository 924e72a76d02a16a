namespace Wharf.Core.Batches;

/// <summary>
/// One way of running a batch: <c>gateway</c> (Wharf sends each line through the model dispatch) or <c>native</c>
/// (the provider's own batch API). The engine claims a batch, holds its lease while the execution named by the
/// batch's <see cref="BatchRecord.Execution"/> works on it, and renews the lease meanwhile.
/// </summary>
public interface IBatchExecution
{
    /// <summary><see cref="BatchExecution.Gateway"/> or <see cref="BatchExecution.Native"/>.</summary>
    string Name { get; }

    /// <summary>
    /// Works on the claimed batch, from whatever status it is in (a batch taken over after a crash resumes where the
    /// catalog says it was), until it is final (written by <see cref="BatchFinalizer"/>) or
    /// <paramref name="cancellationToken"/> fires (the lease was lost or the node stops: leave the rest to the next
    /// owner). Writes only through <see cref="Ports.IBatchCatalog"/> with <see cref="BatchLease.Owner"/>.
    /// </summary>
    Task RunAsync(BatchLease lease, CancellationToken cancellationToken);
}

/// <summary>A batch claimed by this node: the batch as claimed, the lease's owner, and the client's cancel.</summary>
/// <param name="CancelRequested">
/// Fires when a cancel is asked on this node (<see cref="BatchSignals"/>); a cancel asked on another node shows in
/// the batch's status in the catalog (<c>cancelling</c>), which an execution reads again while it works.
/// </param>
public sealed record BatchLease(BatchRecord Batch, string Owner, CancellationToken CancelRequested);
