using System.Text.Json.Serialization;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Tenancy;
using Wharf.Core.Uploads;

namespace Wharf.Server.Api;

/// <summary>OpenAI's file object plus Wharf's fields. Every key is always written (null where empty).</summary>
internal sealed record FileObject(
    [property: JsonPropertyOrder(-2)] string Id,
    long Bytes,
    long CreatedAt,
    string Filename,
    string Purpose,
    string Status,
    string? StatusDetails,
    long? ExpiresAt,
    IReadOnlyDictionary<string, string> Metadata,
    string? Collection,
    string Provider,
    string? Sha256)
{
    [JsonPropertyOrder(-1)]
    public string Object => "file";

    public static FileObject From(FileRecord file) => new(
        file.Id, file.Bytes, file.CreatedAt, file.Filename, file.Purpose, file.Status, file.StatusDetails,
        file.ExpiresAt, file.Metadata, file.Collection, file.Provider, file.Sha256);
}

internal sealed record FileList(IReadOnlyList<FileObject> Data, string? FirstId, string? LastId, bool HasMore, string? After)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";

    public static FileList From(Page<FileRecord> page)
    {
        var data = new FileObject[page.Items.Count];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = FileObject.From(page.Items[i]);
        }
        string? lastId = data.Length > 0 ? data[^1].Id : null;
        return new FileList(data, data.Length > 0 ? data[0].Id : null, lastId, page.HasMore, page.HasMore ? lastId : null);
    }

    /// <summary>A provider's own page: its ids, its files as OpenAI's file object, its <c>has_more</c>.</summary>
    public static FileList FromUpstream(string provider, Wharf.Core.Providers.UpstreamFilePage page)
    {
        var data = new FileObject[page.Data.Count];
        for (int i = 0; i < data.Length; i++)
        {
            var f = page.Data[i];
            // OpenAI's SDKs accept only its three statuses on a file object.
            string status = f.Status is FileStatus.Uploaded or FileStatus.Processed or FileStatus.Error ? f.Status : FileStatus.Processed;
            data[i] = new FileObject(f.Id, f.Bytes, f.CreatedAt, f.Filename, f.Purpose, status, null, f.ExpiresAt, FileRecord.EmptyMetadata, null, provider, null);
        }
        // The provider's cursor, even when Wharf kept only some of its page, so paging with it still moves on.
        string? lastId = page.Cursor ?? (data.Length > 0 ? data[^1].Id : null);
        return new FileList(data, data.Length > 0 ? data[0].Id : null, lastId, page.HasMore, page.HasMore ? lastId : null);
    }
}

/// <summary>
/// OpenAI's upload object; Wharf adds <c>parts</c> (received so far) on <c>GET /v1/uploads/{id}</c>, and the
/// <c>metadata</c>, <c>collection</c> and <c>provider</c> its file will have.
/// </summary>
internal sealed record UploadObject(
    [property: JsonPropertyOrder(-2)] string Id,
    long Bytes,
    long CreatedAt,
    string Filename,
    string Purpose,
    string Status,
    long ExpiresAt,
    FileObject? File,
    IReadOnlyDictionary<string, string> Metadata,
    string? Collection,
    string Provider,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<UploadPartObject>? Parts)
{
    [JsonPropertyOrder(-1)]
    public string Object => "upload";

    public static UploadObject From(UploadView view, bool withParts) => new(
        view.Upload.Id, view.Upload.Bytes, view.Upload.CreatedAt, view.Upload.Filename, view.Upload.Purpose,
        view.Upload.Status, view.Upload.ExpiresAt,
        view.File is null ? null : FileObject.From(view.File),
        view.Upload.Metadata, view.Upload.Collection, view.Upload.Provider,
        withParts ? [.. view.Parts.Select(UploadPartObject.From)] : null);
}

internal sealed record UploadPartObject(
    [property: JsonPropertyOrder(-2)] string Id,
    long CreatedAt,
    string UploadId,
    long Bytes,
    string Sha256)
{
    [JsonPropertyOrder(-1)]
    public string Object => "upload.part";

    public static UploadPartObject From(UploadPartRecord part) => new(part.Id, part.CreatedAt, part.UploadId, part.Bytes, part.Sha256);
}

internal sealed record DeletedObject(string Id, string Object, bool Deleted);

internal sealed record WorkspaceObject(
    [property: JsonPropertyOrder(-2)] string Id,
    string Name,
    long CreatedAt,
    long? StorageQuotaBytes,
    long StorageUsageBytes,
    int? RateLimitRpm,
    IReadOnlyList<string>? AllowedProviders,
    string? WebhookUrl,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? WebhookSecret)
{
    [JsonPropertyOrder(-1)]
    public string Object => "workspace";

    public static WorkspaceObject From(Workspace w) =>
        new(w.Id, w.Name, w.CreatedAt, w.StorageQuotaBytes, w.UsageBytes, w.RateLimitRpm, w.AllowedProviders, w.WebhookUrl, null);

    /// <summary>The answer of the write that set a webhook URL carries its new secret, this once.</summary>
    public static WorkspaceObject From(WrittenWorkspace written) => From(written.Workspace) with { WebhookSecret = written.WebhookSecret };
}

/// <summary>An API key; <c>key</c> (the secret) is present only in the answer that created it.</summary>
internal sealed record KeyObject(
    [property: JsonPropertyOrder(-2)] string Id,
    string WorkspaceId,
    string Name,
    string Prefix,
    long CreatedAt,
    long? ExpiresAt,
    long? LastUsedAt,
    IReadOnlyList<string> Scopes,
    int? RateLimitRpm,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key)
{
    [JsonPropertyOrder(-1)]
    public string Object => "api_key";

    public static KeyObject From(ApiKeyRecord k, string? secret) =>
        new(k.Id, k.WorkspaceId, k.Name, k.Prefix, k.CreatedAt, k.ExpiresAt, k.LastUsedAt, ApiScopes.Expand(k.Scopes), k.RateLimitRpm, secret);
}

internal sealed record AdminList<T>(IReadOnlyList<T> Data, string? FirstId, string? LastId, bool HasMore)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";

    public static AdminList<T> From(IReadOnlyList<T> items, bool hasMore, Func<T, string> id) =>
        new(items, items.Count > 0 ? id(items[0]) : null, items.Count > 0 ? id(items[^1]) : null, hasMore);
}

internal sealed record HealthStatus(string Status);

/// <summary>A provider as <c>GET /v1/providers</c> lists it: <c>models</c> null when any model may be sent there.</summary>
internal sealed record ProviderObject(
    [property: JsonPropertyOrder(-2)] string Id,
    string Type,
    IReadOnlyList<string> Capabilities,
    IReadOnlyList<string>? Models)
{
    [JsonPropertyOrder(-1)]
    public string Object => "provider";

    public static ProviderObject From(Wharf.Core.Providers.RegisteredProvider p) => new(
        p.Id,
        p.Provider.Type,
        [.. p.Provider.Capabilities.Order().Select(Wharf.Core.Providers.ProviderCapabilities.WireName)],
        p.Models is { } models ? [.. models.Order(StringComparer.Ordinal)] : null);
}

internal sealed record ProviderList(IReadOnlyList<ProviderObject> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

/// <summary>One recent upstream call (extension): when it ended (Unix seconds), what it was, how it went.</summary>
internal sealed record ProviderOutcomeObject(long At, string Operation, string Outcome, int? Status, long DurationMs)
{
    public static ProviderOutcomeObject From(Wharf.Core.Providers.RecentUpstreamOutcome o) => new(o.At, o.Operation, o.Outcome, o.Status, o.DurationMs);
}

/// <summary>A provider's recent upstream calls on this node, newest first.</summary>
internal sealed record ProviderOutcomeList([property: JsonPropertyOrder(-2)] string Provider, IReadOnlyList<ProviderOutcomeObject> Data)
{
    [JsonPropertyOrder(-3)]
    public string Object => "list";
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(FileObject))]
[JsonSerializable(typeof(FileList))]
[JsonSerializable(typeof(DeletedObject))]
[JsonSerializable(typeof(HealthStatus))]
[JsonSerializable(typeof(ProviderList))]
[JsonSerializable(typeof(ProviderOutcomeList))]
[JsonSerializable(typeof(WorkspaceObject))]
[JsonSerializable(typeof(UploadObject))]
[JsonSerializable(typeof(UploadPartObject))]
[JsonSerializable(typeof(KeyObject))]
[JsonSerializable(typeof(AdminList<WorkspaceObject>))]
[JsonSerializable(typeof(AdminList<KeyObject>))]
[JsonSerializable(typeof(BatchObject))]
[JsonSerializable(typeof(BatchList))]
[JsonSerializable(typeof(Errors.ErrorEnvelope))]
internal sealed partial class WireJsonContext : JsonSerializerContext;

/// <summary>OpenAI's batch object, every key written (null where empty), plus Wharf's <c>execution</c> and <c>provider</c>.</summary>
internal sealed record BatchObject(
    [property: JsonPropertyOrder(-2)] string Id,
    string Endpoint,
    BatchErrorList? Errors,
    string InputFileId,
    string CompletionWindow,
    string Status,
    string? OutputFileId,
    string? ErrorFileId,
    long CreatedAt,
    long? InProgressAt,
    long? ExpiresAt,
    long? FinalizingAt,
    long? CompletedAt,
    long? FailedAt,
    long? ExpiredAt,
    long? CancellingAt,
    long? CancelledAt,
    BatchCountsObject RequestCounts,
    BatchUsageObject Usage,
    IReadOnlyDictionary<string, string>? Metadata,
    string Execution,
    string? Provider)
{
    [JsonPropertyOrder(-1)]
    public string Object => "batch";

    public static BatchObject From(Wharf.Core.Batches.BatchRecord b) => new(
        b.Id, b.Endpoint,
        b.Errors.Count == 0 ? null : new BatchErrorList([.. b.Errors.Select(e => new BatchErrorObject(e.Code, e.Message, e.Param, e.Line))]),
        b.InputFileId, b.CompletionWindow, b.Status, b.OutputFileId, b.ErrorFileId,
        b.CreatedAt, b.InProgressAt, b.ExpiresAt, b.FinalizingAt, b.CompletedAt, b.FailedAt, b.ExpiredAt, b.CancellingAt, b.CancelledAt,
        new BatchCountsObject(b.RequestCounts.Total, b.RequestCounts.Completed, b.RequestCounts.Failed),
        new BatchUsageObject(
            b.Usage.InputTokens, new BatchInputTokensDetails(b.Usage.CachedTokens),
            b.Usage.OutputTokens, new BatchOutputTokensDetails(b.Usage.ReasoningTokens),
            b.Usage.TotalTokens),
        b.Metadata, b.Execution, b.Native?.Provider ?? b.Provider);
}

internal sealed record BatchErrorList(IReadOnlyList<BatchErrorObject> Data)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";
}

internal sealed record BatchErrorObject(string Code, string Message, string? Param, int? Line);

internal sealed record BatchCountsObject(int Total, int Completed, int Failed);

internal sealed record BatchUsageObject(
    long InputTokens, BatchInputTokensDetails InputTokensDetails, long OutputTokens, BatchOutputTokensDetails OutputTokensDetails, long TotalTokens);

internal sealed record BatchInputTokensDetails(long CachedTokens);

internal sealed record BatchOutputTokensDetails(long ReasoningTokens);

internal sealed record BatchList(IReadOnlyList<BatchObject> Data, string? FirstId, string? LastId, bool HasMore)
{
    [JsonPropertyOrder(-1)]
    public string Object => "list";

    public static BatchList From(Page<Wharf.Core.Batches.BatchRecord> page)
    {
        var data = page.Items.Select(BatchObject.From).ToArray();
        return new BatchList(data, data.Length > 0 ? data[0].Id : null, data.Length > 0 ? data[^1].Id : null, page.HasMore);
    }
}
