using System.Text;
using System.Text.Json;
using Spectre.Console;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Http;

/// <summary>
/// Lists that come in pages (<c>data</c>, <c>last_id</c>, <c>has_more</c>): one page, or with <c>--all</c> every page,
/// following <c>after=last_id</c>. As a table, or as one JSON list streamed as the pages arrive.
/// </summary>
internal static class Pages
{
    /// <summary>A query string of the pairs that have a value (<c>""</c> when none has).</summary>
    public static string Query(IEnumerable<KeyValuePair<string, string?>> pairs)
    {
        var query = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (value is null)
            {
                continue;
            }
            query.Append(query.Length == 0 ? '?' : '&').Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
        }
        return query.ToString();
    }

    public static async Task<CliFailure?> PrintAsync(
        CommandContext context, Func<string?, Uri> pageAfter, ApiKeyKind key, string? after, bool all,
        Func<Table> newTable, Action<Table, JsonElement> row, string noun, CancellationToken cancellationToken)
    {
        var first = await context.Client.GetAsync(pageAfter(after), key, cancellationToken);
        if (!first.IsOk)
        {
            return first.Failure;
        }
        if (!all)
        {
            var page = first.Value.Deserialize(CliJson.Default.PageOfElements)!;
            if (context.Json)
            {
                Output.Json(first.Value);
            }
            else
            {
                var table = newTable();
                page.Data.ForEach(e => row(table, e));
                Output.Table(table);
            }
            if (page.HasMore)
            {
                Output.Note($"More {noun}: --after {page.LastId}, or --all.");
            }
            return null;
        }
        return context.Json
            ? await StreamJsonAsync(context, first.Value, pageAfter, key, cancellationToken)
            : await FillTableAsync(context, first.Value, pageAfter, key, newTable, row, cancellationToken);
    }

    private static async Task<CliFailure?> FillTableAsync(
        CommandContext context, JsonElement first, Func<string?, Uri> pageAfter, ApiKeyKind key,
        Func<Table> newTable, Action<Table, JsonElement> row, CancellationToken cancellationToken)
    {
        var table = newTable();
        var answer = (Outcome<JsonElement>)first;
        while (true)
        {
            var page = answer.Value.Deserialize(CliJson.Default.PageOfElements)!;
            page.Data.ForEach(e => row(table, e));
            if (!page.HasMore || page.LastId is null)
            {
                break;
            }
            answer = await context.Client.GetAsync(pageAfter(page.LastId), key, cancellationToken);
            if (!answer.IsOk)
            {
                Output.Table(table);
                return answer.Failure;
            }
        }
        Output.Table(table);
        return null;
    }

    /// <summary>
    /// Writes <c>{"object":"list","data":[...every item...],"first_id","last_id","has_more"}</c> as the pages come,
    /// so memory does not grow with the list. A page that fails ends the document with <c>has_more: true</c> and the
    /// <c>error</c>, still one well-formed document.
    /// </summary>
    private static async Task<CliFailure?> StreamJsonAsync(
        CommandContext context, JsonElement first, Func<string?, Uri> pageAfter, ApiKeyKind key, CancellationToken cancellationToken)
    {
        await using var stdout = Console.OpenStandardOutput();
        await using var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true });
        writer.WriteStartObject();
        writer.WriteString("object", "list");
        writer.WriteStartArray("data");
        string? firstId = null;
        string? lastId = null;
        CliFailure? failure = null;
        var answer = (Outcome<JsonElement>)first;
        while (true)
        {
            var page = answer.Value.Deserialize(CliJson.Default.PageOfElements)!;
            foreach (var item in page.Data)
            {
                item.WriteTo(writer);
            }
            await writer.FlushAsync(cancellationToken);
            firstId ??= page.FirstId;
            lastId = page.LastId ?? lastId;
            if (!page.HasMore || page.LastId is null)
            {
                break;
            }
            answer = await context.Client.GetAsync(pageAfter(page.LastId), key, cancellationToken);
            if (!answer.IsOk)
            {
                failure = answer.Failure;
                break;
            }
        }
        writer.WriteEndArray();
        writer.WriteString("first_id", firstId);
        writer.WriteString("last_id", lastId);
        writer.WriteBoolean("has_more", failure is not null);
        if (failure is not null)
        {
            writer.WriteStartObject("error");
            writer.WriteString("message", failure.Message);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        await writer.FlushAsync(cancellationToken);
        await stdout.WriteAsync("\n"u8.ToArray(), cancellationToken);
        return failure;
    }
}
