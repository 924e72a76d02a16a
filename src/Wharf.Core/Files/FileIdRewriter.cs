using System.Buffers;
using System.Text;
using System.Text.Json;
using Wharf.Core.Ids;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Files;

/// <summary>
/// Rewrites the Wharf file ids of a model request (every <c>file_id</c> property whose value is a Wharf file id: a
/// chat completion's <c>file</c> content part, a Responses <c>input_file</c>) to the candidate provider's copies,
/// copying each file there first when it has none. Every other byte of the body is sent as it is. A provider
/// without a Files API gets the body unchanged; a body without a Wharf file id costs one search for <c>file-</c>.
/// </summary>
public sealed class FileIdRewriter(ProviderFileCopies copies) : IModelBodyRewriter
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 256 };

    public async ValueTask<ModelBodyRewrite> RewriteAsync(ModelBodyContext context, CancellationToken cancellationToken)
    {
        var provider = context.Provider.Provider;
        if (!provider.Capabilities.Contains(ProviderCapability.Files) || !MayNameAFile(context.Body.Span))
        {
            return ModelBodyRewrite.Send(context.Body);
        }
        var (references, others) = FindFileIds(context.Body.Span);
        if (others.Count > 0)
        {
            // Ids as the provider knows them: its account is shared by every workspace, so one that Wharf knows
            // as a copy must be the workspace's own.
            var foreign = await copies.FindForeignUpstreamIdsAsync(
                context.WorkspaceId, provider.Id, [.. others.Select(o => o.FileId).Distinct(StringComparer.Ordinal)], cancellationToken);
            if (foreign.Count > 0)
            {
                var first = others.First(o => foreign.Contains(o.FileId));
                return ModelBodyRewrite.Refused(ProviderFileCopies.UpstreamFileNotFound(first.FileId, first.Param));
            }
        }
        if (references.Count == 0)
        {
            return ModelBodyRewrite.Send(context.Body);
        }
        var upstreamIds = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var reference in references)
        {
            if (upstreamIds.ContainsKey(reference.FileId))
            {
                continue;
            }
            var copy = await copies.EnsureCopyAsync(context.WorkspaceId, reference.FileId, provider, reference.Param, cancellationToken);
            if (!copy.IsOk)
            {
                return ModelBodyRewrite.Refused(copy.Error);
            }
            if (!copy.Value.IsOk)
            {
                return ModelBodyRewrite.Failed(copy.Value.Failure);
            }
            upstreamIds[reference.FileId] = copy.Value.Value;
        }
        return ModelBodyRewrite.Send(Splice(context.Body.Span, references, upstreamIds));
    }

    /// <summary>Where a Wharf file id stands in the body: its string token (quotes included) and its JSON path.</summary>
    internal readonly record struct FileIdReference(int Start, int End, string FileId, string Param);

    /// <summary>
    /// The JSON path of the first <c>file_id</c> the body names (a Wharf file id or an id as a provider knows it), or null
    /// when it names none. For a body that goes upstream as it is, where no id is rewritten and no id is checked against
    /// the workspace's copies (a native batch's line).
    /// </summary>
    internal static string? FirstFileReference(ReadOnlySpan<byte> body)
    {
        if (!MayNameAFile(body))
        {
            return null;
        }
        var (wharfIds, others) = FindFileIds(body);
        return wharfIds.Concat(others).OrderBy(r => r.Start).Select(r => r.Param).FirstOrDefault();
    }

    /// <summary>
    /// Whether the body may hold a <c>file_id</c> property: it spells one, or escapes characters (so a name or an
    /// id may be spelled otherwise). A body that does neither is sent without being read.
    /// </summary>
    internal static bool MayNameAFile(ReadOnlySpan<byte> body) => body.IndexOf("file_id"u8) >= 0 || body.IndexOf("\\u"u8) >= 0;

    /// <summary>
    /// Every <c>file_id</c> property whose value is a Wharf file id, in body order, and every other string a
    /// <c>file_id</c> holds (an id as a provider knows it). Values are compared decoded, escaped or not.
    /// </summary>
    internal static (List<FileIdReference> WharfIds, List<FileIdReference> Others) FindFileIds(ReadOnlySpan<byte> body)
    {
        var found = new List<FileIdReference>();
        var others = new List<FileIdReference>();
        var path = new List<PathFrame>();
        var reader = new Utf8JsonReader(body, ReaderOptions);
        bool valueOfFileId = false;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    valueOfFileId = reader.ValueTextEquals("file_id"u8);
                    path[^1].Property = valueOfFileId ? "file_id" : null;
                    path[^1].PropertyStart = (int)reader.TokenStartIndex;
                    continue;
                case JsonTokenType.StartObject:
                case JsonTokenType.StartArray:
                    Advance(path);
                    path.Add(new PathFrame { IsArray = reader.TokenType == JsonTokenType.StartArray });
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    path.RemoveAt(path.Count - 1);
                    break;
                case JsonTokenType.String:
                    Advance(path);
                    if (valueOfFileId && Decoded(ref reader) is { } value)
                    {
                        var reference = new FileIdReference((int)reader.TokenStartIndex, (int)reader.BytesConsumed, value, Param(body, path));
                        (WharfIds.IsFileId(value) ? found : others).Add(reference);
                    }
                    break;
                default:
                    Advance(path);
                    break;
            }
            valueOfFileId = false;
        }
        return (found, others);
    }

    /// <summary>The string decoded; null when its escapes spell no text (a lone surrogate), which names no file.</summary>
    private static string? Decoded(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static void Advance(List<PathFrame> path)
    {
        if (path.Count > 0 && path[^1].IsArray)
        {
            path[^1].Index++;
        }
    }

    /// <summary>The JSON path of the current value, e.g. <c>messages[0].content[1].file.file_id</c>.</summary>
    private static string Param(ReadOnlySpan<byte> body, List<PathFrame> path)
    {
        var text = new StringBuilder();
        foreach (var frame in path)
        {
            if (frame.IsArray)
            {
                text.Append('[').Append(frame.Index).Append(']');
                continue;
            }
            string name = frame.Property ?? PropertyName(body, frame.PropertyStart);
            if (text.Length > 0)
            {
                text.Append('.');
            }
            text.Append(name);
        }
        return text.ToString();
    }

    /// <summary>The property name whose token starts at <paramref name="start"/>, read again (only for a path being reported).</summary>
    private static string PropertyName(ReadOnlySpan<byte> body, int start)
    {
        var reader = new Utf8JsonReader(body[start..], new JsonReaderOptions { AllowMultipleValues = true });
        return reader.Read() && reader.TokenType == JsonTokenType.String ? Json.ClientJson.Printable(reader.GetString() ?? "", 64) : "?";
    }

    private static ReadOnlyMemory<byte> Splice(ReadOnlySpan<byte> body, List<FileIdReference> references, Dictionary<string, string> upstreamIds)
    {
        var output = new ArrayBufferWriter<byte>(body.Length + references.Count * 64);
        int copied = 0;
        foreach (var reference in references)
        {
            output.Write(body[copied..reference.Start]);
            output.Write("\""u8);
            output.Write(JsonEncodedText.Encode(upstreamIds[reference.FileId]).EncodedUtf8Bytes);
            output.Write("\""u8);
            copied = reference.End;
        }
        output.Write(body[copied..]);
        return output.WrittenMemory;
    }

    private sealed class PathFrame
    {
        public bool IsArray { get; init; }

        /// <summary>The element's index, in an array (-1 before the first).</summary>
        public int Index { get; set; } = -1;

        /// <summary>The current property's name when it is known without reading it again.</summary>
        public string? Property { get; set; }

        public int PropertyStart { get; set; }
    }
}
