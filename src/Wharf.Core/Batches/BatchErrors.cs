using Wharf.Core.Errors;

namespace Wharf.Core.Batches;

/// <summary>The errors of the Batches API, shared by its service and its engine.</summary>
public static class BatchErrors
{
    public static WharfError NoSuchBatch(string id) => new(404, $"No such Batch object: {id}", "id");

    public static WharfError NotCancellable(string id, string status) =>
        new(400, $"Cannot cancel batch {id}: its status is '{status}'.", "id", "batch_not_cancellable");
}
