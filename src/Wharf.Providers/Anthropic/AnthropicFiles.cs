using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// Anthropic's Files API (beta <c>files-api-2025-04-14</c>): an upload is <c>multipart/form-data</c> with the file
/// alone (no <c>purpose</c>), streamed from Wharf's store; the list pages with <c>limit</c> and <c>after_id</c>, newest
/// first; a delete of a file Anthropic does not know counts as done. Its file object (<c>size_bytes</c>,
/// <c>created_at</c> in RFC 3339, no purpose) is mapped to OpenAI's.
/// </summary>
internal sealed class AnthropicFiles(OpenAIWire wire, AnthropicDialect dialect, ProviderContext context)
{
    /// <summary>What a listed file's <c>purpose</c> is said to be: Anthropic's files have none, and are the user's data.</summary>
    public const string ListedPurpose = "user_data";

    public async Task<UpstreamOutcome<UpstreamFile>> UploadAsync(UpstreamFileUpload upload, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        var request = wire.NewRequest(HttpMethod.Post, dialect.FilesUri(null, ""));
        request.Content = new MultipartFileContent(upload.Content, upload.Length, upload.Filename, purpose: null, upload.ContentType, deadline);
        deadline.Arm();
        var answer = await wire.SendForJsonAsync(request, deadline, AnthropicWireJson.Default.AnthropicFileWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        return answer.Value.ToUpstreamFile(upload.Purpose) is { } file ? file : UpstreamFailure.Malformed(200, "Anthropic's file object has no id.");
    }

    public Task<UpstreamOutcome<bool>> DeleteAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        wire.DeleteFileAsync(upstreamFileId, cancellationToken);

    /// <summary>
    /// The query of a page of Anthropic's lists (files and message batches): <c>limit</c> (1–1000) and <c>after_id</c>,
    /// the last id of the page before.
    /// </summary>
    internal static string PageQuery(int? limit, string? after)
    {
        var parameters = new StringBuilder();
        if (limit is { } count)
        {
            parameters.Append("limit=").Append(Math.Clamp(count, 1, 1000).ToString(CultureInfo.InvariantCulture));
        }
        if (after is { Length: > 0 })
        {
            parameters.Append(parameters.Length == 0 ? "" : "&").Append("after_id=").Append(Uri.EscapeDataString(after));
        }
        return parameters.ToString();
    }

    public async Task<UpstreamOutcome<UpstreamFilePage>> ListAsync(UpstreamFileQuery query, CancellationToken cancellationToken)
    {
        if (query.Order is { Length: > 0 } and not "desc")
        {
            return UpstreamFailure.Untranslatable("order", "Anthropic lists files newest first only ('order' may only be 'desc').");
        }
        if (query.Purpose is { Length: > 0 })
        {
            return UpstreamFailure.Untranslatable("purpose", "Anthropic's files have no purpose to filter by.");
        }
        string parameters = PageQuery(query.Limit, query.After);
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var answer = await wire.SendForJsonAsync(wire.NewRequest(HttpMethod.Get, dialect.FilesUri(null, parameters)), deadline,
            AnthropicWireJson.Default.AnthropicFileListWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        var files = new List<UpstreamFile>();
        foreach (var item in answer.Value.Data ?? [])
        {
            if (item.ToUpstreamFile(ListedPurpose) is not { } file)
            {
                return UpstreamFailure.Malformed(200, "Anthropic's file list holds a file without an id.");
            }
            files.Add(file);
        }
        return new UpstreamFilePage(files, answer.Value.HasMore ?? false);
    }
}

/// <summary>Anthropic's file object (what Wharf reads of it).</summary>
internal sealed record AnthropicFileWire(string? Id, string? Filename, string? MimeType, long? SizeBytes, DateTimeOffset? CreatedAt)
{
    public UpstreamFile? ToUpstreamFile(string purpose) => string.IsNullOrEmpty(Id)
        ? null
        : new UpstreamFile(Id, SizeBytes ?? 0, CreatedAt?.ToUnixTimeSeconds() ?? 0, Filename ?? "", purpose, "processed");
}

internal sealed record AnthropicFileListWire(List<AnthropicFileWire>? Data, bool? HasMore);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(AnthropicFileWire))]
[JsonSerializable(typeof(AnthropicFileListWire))]
internal sealed partial class AnthropicWireJson : JsonSerializerContext;
