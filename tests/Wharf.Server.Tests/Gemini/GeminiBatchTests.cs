using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Gemini;

/// <summary>
/// Batches on a <c>gemini</c> provider through the real server: <c>"execution": "native"</c> runs on Gemini's batch
/// mode (the input translated into <c>{key, request}</c> lines, the responses file translated back), and its output
/// lines are the same, ids aside, as those of the same batch run by Wharf's gateway against Gemini.
/// </summary>
public sealed class GeminiBatchTests(GeminiFilesFixture fixture) : IClassFixture<GeminiFilesFixture>, IDisposable
{
    private readonly HttpClient _client = fixture.Server.CreateClient();
    private GeminiSimulator Sim => fixture.Gemini;

    public void Dispose() => _client.Dispose();

    private async Task<JsonElement> CreateAsync(string fileId, string execution, string endpoint = BatchKit.ChatEndpoint)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["input_file_id"] = fileId,
            ["endpoint"] = endpoint,
            ["completion_window"] = "24h",
            ["execution"] = execution,
            ["provider"] = GeminiFilesFixture.ProviderId,
        });
        using var response = await _client.PostAsync("/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    /// <summary>An output line without what is made fresh for each run: its ids and the answer's creation time.</summary>
    private static string WithoutIds(JsonElement line)
    {
        var node = JsonNode.Parse(line.GetRawText())!.AsObject();
        node.Remove("id");
        var response = node["response"]!.AsObject();
        response.Remove("request_id");
        var body = response["body"]!.AsObject();
        body.Remove("id");
        body.Remove("created");
        return node.ToJsonString();
    }

    [Fact]
    public async Task A_native_batch_of_30_lines_answers_as_the_same_batch_through_the_gateway()
    {
        string jsonl = BatchKit.Lines(30, GeminiFilesFixture.Model, prefix: "same-");
        string fileId = await BatchKit.UploadAsync(fixture.Server, jsonl);

        string nativeId = (await CreateAsync(fileId, "native")).GetProperty("id").GetString()!;
        var native = await BatchKit.WaitForEndAsync(_client, nativeId);
        string gatewayId = (await CreateAsync(fileId, "gateway")).GetProperty("id").GetString()!;
        var gateway = await BatchKit.WaitForEndAsync(_client, gatewayId);

        Assert.Equal(("completed", (30, 30, 0)), (native.Status(), native.Counts()));
        Assert.Equal(("completed", (30, 30, 0)), (gateway.Status(), gateway.Counts()));
        // It ran on Gemini's batch mode, named by Wharf's id, on the translated lines.
        var upstream = Assert.Single(Sim.Batches.Values, b => b.DisplayName == nativeId);
        Assert.Equal(GeminiFilesFixture.Model, upstream.Model);
        var input = Encoding.UTF8.GetString(Sim.Files[upstream.InputFile].Content).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(30, input.Length);
        using (var first = JsonDocument.Parse(input[0]))
        {
            Assert.Equal("same-1", first.RootElement.GetProperty("key").GetString());
            Assert.Equal("line same-1", first.RootElement.GetProperty("request").GetProperty("contents")[0].GetProperty("parts")[0].GetProperty("text").GetString());
        }

        var nativeLines = await BatchKit.ResultLinesAsync(fixture.Server, native.GetProperty("output_file_id"));
        var gatewayLines = await BatchKit.ResultLinesAsync(fixture.Server, gateway.GetProperty("output_file_id"));
        Assert.Equal(30, nativeLines.Count);
        Assert.All(nativeLines, l =>
        {
            Assert.StartsWith("batch_req_", l.GetProperty("id").GetString(), StringComparison.Ordinal);
            Assert.Equal("chat.completion", l.GetProperty("response").GetProperty("body").GetProperty("object").GetString());
        });
        Assert.Equal(
            gatewayLines.OrderBy(BatchKit.CustomId, StringComparer.Ordinal).Select(WithoutIds),
            nativeLines.OrderBy(BatchKit.CustomId, StringComparer.Ordinal).Select(WithoutIds));
        Assert.Equal(JsonValueKind.Null, native.GetProperty("error_file_id").ValueKind);
        // Gemini reports no tokens for a batch: they are summed from its responses as the gateway sums its answers.
        Assert.True(native.GetProperty("usage").GetProperty("total_tokens").GetInt64() > 0);
        Assert.Equal(gateway.GetProperty("usage").GetRawText(), native.GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task Lines_gemini_answered_with_an_error_go_to_the_error_file_as_the_gateway_writes_them()
    {
        string jsonl = BatchKit.Lines(4, GeminiFilesFixture.Model, prefix: "mixed-");
        Sim.FailingKeys["mixed-2"] = 400;
        string fileId = await BatchKit.UploadAsync(fixture.Server, jsonl);

        var batch = await BatchKit.WaitForEndAsync(_client, (await CreateAsync(fileId, "native")).GetProperty("id").GetString()!);

        Assert.Equal(("completed", (4, 3, 1)), (batch.Status(), batch.Counts()));
        var output = await BatchKit.ResultLinesAsync(fixture.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(["mixed-1", "mixed-3", "mixed-4"], output.Select(BatchKit.CustomId).Order(StringComparer.Ordinal));
        var error = Assert.Single(await BatchKit.ResultLinesAsync(fixture.Server, batch.GetProperty("error_file_id")));
        Assert.Equal("mixed-2", error.CustomId());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("error").ValueKind);
        var response = error.GetProperty("response");
        Assert.Equal(400, response.GetProperty("status_code").GetInt32());
        var body = response.GetProperty("body").GetProperty("error");
        Assert.Equal("invalid_request_error", body.GetProperty("type").GetString());
        Assert.Equal("INVALID_ARGUMENT", body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("message").GetString()));

        // The same refusal met by the gateway (every call of a model Gemini refuses) is written the same way.
        Sim.SetRule(RefusedModel, Fault.Status(400));
        string refused = BatchKit.ChatLine("mixed-2", "gem/" + RefusedModel) + "\n";
        var gateway = await BatchKit.WaitForEndAsync(_client, (await CreateAsync(await BatchKit.UploadAsync(fixture.Server, refused), "gateway")).GetProperty("id").GetString()!);
        var gatewayError = Assert.Single(await BatchKit.ResultLinesAsync(fixture.Server, gateway.GetProperty("error_file_id")));
        Assert.Equal(ErrorWithoutIds(gatewayError), ErrorWithoutIds(error));
    }

    private const string RefusedModel = "gemini-refused";

    private static string ErrorWithoutIds(JsonElement line)
    {
        var node = JsonNode.Parse(line.GetRawText())!.AsObject();
        node.Remove("id");
        node["response"]!.AsObject().Remove("request_id");
        return node.ToJsonString();
    }

    [Fact]
    public async Task A_native_embeddings_batch_fails_saying_it_runs_through_the_gateway()
    {
        string line = JsonSerializer.Serialize(new { custom_id = "e-1", method = "POST", url = "/v1/embeddings", body = new { model = GeminiFilesFixture.Model, input = "hello" } });
        string fileId = await BatchKit.UploadAsync(fixture.Server, line + "\n");

        var batch = await BatchKit.WaitForEndAsync(_client, (await CreateAsync(fileId, "native", "/v1/embeddings")).GetProperty("id").GetString()!);

        Assert.Equal("failed", batch.Status());
        string message = batch.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString()!;
        Assert.Contains("gateway", message, StringComparison.Ordinal);
        Assert.DoesNotContain(Sim.Requests, r => r.Path.EndsWith(":batchGenerateContent", StringComparison.Ordinal) && r.BodyText.Contains("e-1", StringComparison.Ordinal));
    }
}
