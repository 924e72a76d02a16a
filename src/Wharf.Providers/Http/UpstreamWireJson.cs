using System.Text.Json.Serialization;
using Wharf.Core.Batches;
using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>OpenAI's file object as OpenAI-style upstreams (OpenAI, Azure, vLLM, ...) send it.</summary>
internal sealed record FileObjectWire(string? Id, long? Bytes, long? CreatedAt, string? Filename, string? Purpose, string? Status, long? ExpiresAt)
{
    /// <summary>The file, or null when the upstream left out what every file has (its id).</summary>
    public UpstreamFile? ToUpstreamFile() => string.IsNullOrEmpty(Id)
        ? null
        : new UpstreamFile(Id, Bytes ?? 0, CreatedAt ?? 0, Filename ?? "", Purpose ?? "", Status, ExpiresAt);
}

internal sealed record FileListWire(List<FileObjectWire>? Data, bool? HasMore);

/// <summary>The body of OpenAI's create batch (Azure's is the same).</summary>
internal sealed record BatchCreateWire(string InputFileId, string Endpoint, string CompletionWindow, IReadOnlyDictionary<string, string> Metadata);

/// <summary>OpenAI's batch object as OpenAI-style upstreams send it (what Wharf reads of it).</summary>
internal sealed record BatchObjectWire(
    string? Id,
    string? Status,
    long? CreatedAt,
    string? OutputFileId,
    string? ErrorFileId,
    BatchErrorsWire? Errors,
    BatchRequestCountsWire? RequestCounts,
    BatchUsageWire? Usage,
    Dictionary<string, string?>? Metadata)
{
    /// <summary>The batch, or null when the upstream left out what every batch has (its id and status).</summary>
    public UpstreamBatch? ToUpstreamBatch() => string.IsNullOrEmpty(Id) || string.IsNullOrEmpty(Status)
        ? null
        : new UpstreamBatch
        {
            Id = Id,
            Status = Status,
            CreatedAt = CreatedAt ?? 0,
            OutputFileId = string.IsNullOrEmpty(OutputFileId) ? null : OutputFileId,
            ErrorFileId = string.IsNullOrEmpty(ErrorFileId) ? null : ErrorFileId,
            Errors = [.. (Errors?.Data ?? []).Select(e => new BatchError(e.Code ?? "upstream_error", e.Message ?? "", e.Param, e.Line))],
            RequestCounts = RequestCounts is { } counts ? new BatchRequestCounts(counts.Total ?? 0, counts.Completed ?? 0, counts.Failed ?? 0) : null,
            Usage = Usage is { } usage
                ? new BatchUsage(usage.InputTokens ?? 0, usage.InputTokensDetails?.CachedTokens ?? 0, usage.OutputTokens ?? 0,
                    usage.OutputTokensDetails?.ReasoningTokens ?? 0, usage.TotalTokens ?? 0)
                : null,
            Metadata = Metadata?.Where(m => m.Value is not null).ToDictionary(m => m.Key, m => m.Value!, StringComparer.Ordinal),
        };
}

internal sealed record BatchErrorsWire(List<BatchErrorWire>? Data);

internal sealed record BatchErrorWire(string? Code, string? Message, string? Param, int? Line);

internal sealed record BatchRequestCountsWire(int? Total, int? Completed, int? Failed);

internal sealed record BatchUsageWire(long? InputTokens, TokenDetailsWire? InputTokensDetails, long? OutputTokens, TokenDetailsWire? OutputTokensDetails, long? TotalTokens);

internal sealed record TokenDetailsWire(long? CachedTokens, long? ReasoningTokens);

internal sealed record BatchListWire(List<BatchObjectWire>? Data, bool? HasMore);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(FileObjectWire))]
[JsonSerializable(typeof(FileListWire))]
[JsonSerializable(typeof(BatchCreateWire))]
[JsonSerializable(typeof(BatchObjectWire))]
[JsonSerializable(typeof(BatchListWire))]
internal sealed partial class UpstreamWireJson : JsonSerializerContext;
