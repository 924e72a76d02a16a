using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Batch;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Batches;

/// <summary>What the batch tests share: input files written line by line, batches created and awaited, results read.</summary>
public static class BatchKit
{
    public const string ChatEndpoint = "/v1/chat/completions";

    /// <summary>One request line for <paramref name="model"/> whose message names its custom_id (so an upstream's record shows which line it was).</summary>
    public static string ChatLine(string customId, string model, string? extraBody = null) =>
        JsonSerializer.Serialize(new
        {
            custom_id = customId,
            method = "POST",
            url = ChatEndpoint,
            body = new { model, messages = new[] { new { role = "user", content = "line " + customId } } },
        }).Replace("\"messages\"", (extraBody is null ? "" : extraBody + ",") + "\"messages\"", StringComparison.Ordinal);

    public static string Lines(int count, string model, string prefix = "req-") =>
        string.Join('\n', Enumerable.Range(1, count).Select(i => ChatLine(prefix + i, model))) + "\n";

    public static async Task<string> UploadAsync(WharfServer server, string jsonl, string filename = "input.jsonl")
    {
        OpenAIFile file = await server.CreateFileClient().UploadFileAsync(BinaryData.FromString(jsonl), filename, FileUploadPurpose.Batch);
        return file.Id;
    }

    public static BatchClient Client(WharfServer server) =>
        new(new ApiKeyCredential(WharfServer.Key), new BatchClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });

    /// <summary>Creates a batch with the raw API and returns its object.</summary>
    public static async Task<JsonElement> CreateAsync(HttpClient client, string fileId, string endpoint = ChatEndpoint, string? provider = null)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["input_file_id"] = fileId,
            ["endpoint"] = endpoint,
            ["completion_window"] = "24h",
            ["provider"] = provider,
        }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value));
        using var response = await client.PostAsync("/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    /// <summary>Polls the batch until <paramref name="done"/> holds; fails after <paramref name="seconds"/>.</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient client, string batchId, Func<JsonElement, bool> done, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var batch = await Wire.GetJsonAsync(client, $"/v1/batches/{batchId}");
            if (done(batch))
            {
                return batch;
            }
            Assert.True(DateTime.UtcNow < deadline, $"batch {batchId} did not get there in time: {batch}");
            await Task.Delay(50);
        }
    }

    public static Task<JsonElement> WaitForEndAsync(HttpClient client, string batchId, int seconds = 60) =>
        WaitAsync(client, batchId, b => b.GetProperty("status").GetString() is "completed" or "failed" or "expired" or "cancelled", seconds);

    public static string Status(this JsonElement batch) => batch.GetProperty("status").GetString()!;

    public static (int Total, int Completed, int Failed) Counts(this JsonElement batch)
    {
        var counts = batch.GetProperty("request_counts");
        return (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32());
    }

    /// <summary>The lines of a result file, parsed (none when <paramref name="fileId"/> is null), downloaded with the SDK.</summary>
    public static async Task<List<JsonElement>> ResultLinesAsync(WharfServer server, JsonElement fileId)
    {
        if (fileId.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        BinaryData content = await server.CreateFileClient().DownloadFileAsync(fileId.GetString()!);
        string text = content.ToString();
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.Clone();
        })];
    }

    public static string CustomId(this JsonElement line) => line.GetProperty("custom_id").GetString()!;

    /// <summary>The line of an upstream request body's first message ("line &lt;custom_id&gt;"), or null.</summary>
    public static string? LineOf(Wharf.Simulators.RecordedRequest request)
    {
        try
        {
            using var body = JsonDocument.Parse(request.Body);
            return body.RootElement.GetProperty("messages")[0].GetProperty("content").GetString();
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
