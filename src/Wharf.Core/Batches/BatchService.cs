using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Batches;

/// <summary>What a client sends to create a batch; the service checks every field.</summary>
public sealed record BatchCreateRequest
{
    public string? InputFileId { get; init; }
    public string? Endpoint { get; init; }
    public string? CompletionWindow { get; init; }

    /// <summary>The <c>metadata</c> object as JSON text, if given.</summary>
    public string? MetadataJson { get; init; }

    public string? OutputExpiresAfterAnchor { get; init; }
    public long? OutputExpiresAfterSeconds { get; init; }

    /// <summary>Wharf's <c>execution</c>: <c>gateway</c> (default) or <c>native</c>.</summary>
    public string? Execution { get; init; }

    /// <summary>Wharf's <c>provider</c>: where every line goes (gateway) or where the batch runs (native).</summary>
    public string? Provider { get; init; }
}

/// <summary>The Batches API: create, read, list and cancel the batches of one workspace. The engine runs them.</summary>
public sealed class BatchService(
    IBatchCatalog batches,
    IFileCatalog files,
    IProviderRegistry providers,
    BatchSignals signals,
    IdGenerator ids,
    IOptions<BatchesOptions> options,
    TimeProvider time)
{
    public const int DefaultListLimit = 20;
    public const int MaxListLimit = 100;

    public async Task<Result<BatchRecord>> CreateAsync(Workspace workspace, BatchCreateRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.InputFileId))
        {
            return WharfErrors.Missing("input_file_id");
        }
        if (string.IsNullOrEmpty(request.Endpoint))
        {
            return WharfErrors.Missing("endpoint");
        }
        if (!BatchEndpoints.TryParse(request.Endpoint, out _))
        {
            return WharfErrors.Invalid("endpoint", $"Invalid 'endpoint': expected one of {string.Join(", ", BatchEndpoints.All)}.", "invalid_endpoint");
        }
        if (string.IsNullOrEmpty(request.CompletionWindow))
        {
            return WharfErrors.Missing("completion_window");
        }
        if (request.CompletionWindow != BatchEndpoints.CompletionWindow)
        {
            return WharfErrors.Invalid("completion_window", "Invalid 'completion_window': the only supported window is '24h'.", "invalid_completion_window");
        }
        IReadOnlyDictionary<string, string>? metadata = null;
        if (request.MetadataJson is not null)
        {
            var parsed = FileMetadata.Parse(request.MetadataJson);
            if (!parsed.IsOk)
            {
                return parsed.Error;
            }
            metadata = parsed.Value;
        }
        long? outputExpiresAfter = null;
        if (request.OutputExpiresAfterAnchor is not null || request.OutputExpiresAfterSeconds is not null)
        {
            var expiry = FileFieldRules.ExpirySeconds(
                request.OutputExpiresAfterAnchor,
                request.OutputExpiresAfterSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture),
                FilePurposes.BatchOutput);
            if (!expiry.IsOk)
            {
                return expiry.Error with { Param = expiry.Error.Param?.Replace("expires_after", "output_expires_after", StringComparison.Ordinal) };
            }
            outputExpiresAfter = expiry.Value;
        }
        string execution = request.Execution ?? BatchExecution.Gateway;
        if (execution is not (BatchExecution.Gateway or BatchExecution.Native))
        {
            return WharfErrors.Invalid("execution", "Invalid 'execution': expected 'gateway' or 'native'.", "invalid_execution");
        }
        if (execution == BatchExecution.Native && metadata is not null)
        {
            // The upstream batch carries Wharf's batch id as one of its pairs (how a crash is recovered from): a
            // native batch has room for one pair fewer, and may not set that key itself.
            if (metadata.Count > NativeBatchExecution.MaxClientMetadataPairs)
            {
                return WharfErrors.Invalid("metadata",
                    $"Invalid 'metadata': a native batch may carry at most {NativeBatchExecution.MaxClientMetadataPairs} pairs, as its provider's batch also carries '{NativeBatchExecution.MetadataKey}'.",
                    "invalid_metadata");
            }
            if (metadata.ContainsKey(NativeBatchExecution.MetadataKey))
            {
                return WharfErrors.Invalid("metadata",
                    $"Invalid 'metadata': the key '{NativeBatchExecution.MetadataKey}' is Wharf's own on a native batch's provider batch.",
                    "invalid_metadata");
            }
        }
        if (request.Provider is { } provider)
        {
            if (!providers.TryGet(provider, out var registered) || provider == FileService.LocalProvider)
            {
                return ProviderFileErrors.UnknownProvider(provider);
            }
            if (!registered.IsUsableBy(workspace))
            {
                return ProviderFileErrors.NotEnabled(provider);
            }
            if (execution == BatchExecution.Native && !registered.Provider.Capabilities.Contains(ProviderCapability.Batches))
            {
                return WharfErrors.Invalid("provider", $"The provider '{provider}' has no batch API: run the batch with \"execution\": \"gateway\".", "provider_without_batches");
            }
        }

        var file = WharfIds.IsFileId(request.InputFileId) ? await files.GetAsync(workspace.Id, request.InputFileId, cancellationToken) : null;
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        if (file is null || file.ExpiresAt is { } expires && expires <= now)
        {
            return WharfErrors.Invalid("input_file_id", $"No such File object: {request.InputFileId}", "invalid_input_file");
        }
        if (file.Purpose != FilePurposes.Batch)
        {
            return WharfErrors.Invalid("input_file_id", $"The input file {file.Id} has purpose '{file.Purpose}': a batch's input file must have purpose 'batch'.", "invalid_input_file_purpose");
        }
        if (file.Bytes > options.Value.MaxInputBytes)
        {
            return WharfErrors.Invalid("input_file_id", $"The input file is {file.Bytes} bytes: a batch's input file may hold at most {options.Value.MaxInputBytes} bytes.", "input_file_too_large");
        }

        UInt128 value = ids.Next();
        long createdAt = IdGenerator.TimestampOf(value) / 1000;
        var batch = new BatchRecord
        {
            Id = WharfIds.Hex(WharfIds.BatchPrefix, value),
            WorkspaceId = workspace.Id,
            Endpoint = request.Endpoint,
            InputFileId = file.Id,
            Execution = execution,
            Provider = request.Provider,
            Status = BatchStatus.Validating,
            CreatedAt = createdAt,
            ExpiresAt = createdAt + BatchEndpoints.CompletionWindowSeconds,
            Metadata = metadata,
            OutputExpiresAfterSeconds = outputExpiresAfter,
        };
        if (!await batches.InsertAsync(batch, cancellationToken))
        {
            return WharfErrors.WorkspaceDeleted();
        }
        signals.WorkAdded();
        return batch;
    }

    public async Task<Result<BatchRecord>> GetAsync(string workspaceId, string batchId, CancellationToken cancellationToken)
    {
        var batch = WharfIds.IsHexId(batchId, WharfIds.BatchPrefix) ? await batches.GetAsync(workspaceId, batchId, cancellationToken) : null;
        return batch is null ? BatchErrors.NoSuchBatch(batchId) : batch;
    }

    public async Task<Result<Page<BatchRecord>>> ListAsync(string workspaceId, int? limit, string? after, CancellationToken cancellationToken)
    {
        int size = limit ?? DefaultListLimit;
        if (size is < 1 or > MaxListLimit)
        {
            return WharfErrors.Invalid("limit", $"Invalid 'limit': expected an integer between 1 and {MaxListLimit}.", "invalid_limit");
        }
        if (after is not null && !WharfIds.IsHexId(after, WharfIds.BatchPrefix))
        {
            return WharfErrors.Invalid("after", "Invalid 'after': expected a batch id.", "invalid_cursor");
        }
        return await batches.ListAsync(workspaceId, size, after, cancellationToken);
    }

    /// <summary>
    /// Asks for a running batch to be cancelled: it answers <c>cancelling</c> at once, and the engine stops
    /// dispatching its lines and finalises what is done. A finished batch cannot be cancelled (400).
    /// </summary>
    public async Task<Result<BatchRecord>> CancelAsync(string workspaceId, string batchId, CancellationToken cancellationToken)
    {
        if (!WharfIds.IsHexId(batchId, WharfIds.BatchPrefix))
        {
            return BatchErrors.NoSuchBatch(batchId);
        }
        var batch = await batches.RequestCancelAsync(workspaceId, batchId, time.GetUtcNow().ToUnixTimeSeconds(), cancellationToken);
        if (batch is null)
        {
            return BatchErrors.NoSuchBatch(batchId);
        }
        if (batch.Status is not (BatchStatus.Cancelling or BatchStatus.Cancelled))
        {
            return BatchErrors.NotCancellable(batchId, batch.Status);
        }
        signals.CancelRequested(batchId);
        // A native batch waiting for its next poll is held by no node: the engine claims it now and passes the cancel on.
        signals.WorkAdded();
        return batch;
    }
}
