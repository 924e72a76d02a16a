using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Batch;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Batches;

/// <summary>The Batches API's objects, lists, scopes, isolation and bad input (what runs a batch is tested apart).</summary>
public sealed class BatchesApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private const string Line = """{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}""";

    private static readonly string[] BatchKeys =
    [
        "id", "object", "endpoint", "errors", "input_file_id", "completion_window", "status", "output_file_id", "error_file_id",
        "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
        "cancelling_at", "cancelled_at", "request_counts", "usage", "metadata",
    ];

    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    private static async Task<string> UploadInputAsync(HttpClient client, string purpose = "batch") =>
        (await Wire.UploadAsync(client, purpose, Line + "\n", "in.jsonl")).GetProperty("id").GetString()!;

    private static Task<HttpResponseMessage> CreateAsync(HttpClient client, object body, string prefix = "/v1") =>
        client.PostAsJsonAsync($"{prefix}/batches", body);

    [Fact]
    public async Task A_batch_created_through_the_official_sdk_has_every_key_of_OpenAIs_batch_object()
    {
        var (_, tenant) = await _admin.NewTenantAsync("batches-sdk");
        string input = await UploadInputAsync(tenant);
        var client = new BatchClient(new ApiKeyCredential(tenant.DefaultRequestHeaders.Authorization!.Parameter!),
            new BatchClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "/v1") });

        using var body = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            input_file_id = input,
            endpoint = "/v1/chat/completions",
            completion_window = "24h",
            metadata = new Dictionary<string, string> { ["team"] = "search" },
            output_expires_after = new { anchor = "created_at", seconds = 7200 },
        }));
        var operation = await client.CreateBatchAsync(body, waitUntilCompleted: false);
        using var created = JsonDocument.Parse(operation.GetRawResponse().Content);
        var batch = created.RootElement;

        Assert.Equal(BatchKeys.Order(), batch.EnumerateObject().Select(p => p.Name).Where(BatchKeys.Contains).Order());
        Assert.Equal("batch", batch.GetProperty("object").GetString());
        Assert.Matches("^batch_[0-9a-f]{32}$", batch.GetProperty("id").GetString());
        Assert.Equal(operation.BatchId, batch.GetProperty("id").GetString());
        Assert.Equal(input, batch.GetProperty("input_file_id").GetString());
        Assert.Equal("24h", batch.GetProperty("completion_window").GetString());
        Assert.Equal("search", batch.GetProperty("metadata").GetProperty("team").GetString());
        long createdAt = batch.GetProperty("created_at").GetInt64();
        Assert.Equal(createdAt + 24 * 3600, batch.GetProperty("expires_at").GetInt64());
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5);
        Assert.Equal(JsonValueKind.Object, batch.GetProperty("request_counts").ValueKind);
        Assert.Equal(0, batch.GetProperty("usage").GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal("gateway", batch.GetProperty("execution").GetString());

        // Read back through the SDK's operation, and through the aliases.
        var read = await operation.GetBatchAsync(options: null);
        using var readJson = JsonDocument.Parse(read.GetRawResponse().Content);
        Assert.Equal(operation.BatchId, readJson.RootElement.GetProperty("id").GetString());
        foreach (string prefix in new[] { "/openai/v1", "/openai" })
        {
            var aliased = await Wire.GetJsonAsync(tenant, $"{prefix}/batches/{operation.BatchId}");
            Assert.Equal(input, aliased.GetProperty("input_file_id").GetString());
        }
    }

    [Fact]
    public async Task Batches_are_listed_newest_first_in_pages_with_cursors()
    {
        var (_, tenant) = await _admin.NewTenantAsync("batches-list");
        string input = await UploadInputAsync(tenant);
        var ids = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            using var response = await CreateAsync(tenant, new { input_file_id = input, endpoint = "/v1/embeddings", completion_window = "24h" });
            ids.Add((await Wire.JsonAsync(response)).GetProperty("id").GetString()!);
        }
        ids.Reverse();

        var all = await Wire.GetJsonAsync(tenant, "/v1/batches");
        Assert.Equal("list", all.GetProperty("object").GetString());
        Assert.Equal(ids, all.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));
        Assert.Equal(ids[0], all.GetProperty("first_id").GetString());
        Assert.Equal(ids[^1], all.GetProperty("last_id").GetString());
        Assert.False(all.GetProperty("has_more").GetBoolean());

        var first = await Wire.GetJsonAsync(tenant, "/v1/batches?limit=2");
        Assert.Equal(ids[..2], first.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));
        Assert.True(first.GetProperty("has_more").GetBoolean());
        var next = await Wire.GetJsonAsync(tenant, $"/openai/v1/batches?limit=3&after={first.GetProperty("last_id").GetString()}");
        Assert.Equal(ids[2..], next.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()));
        Assert.False(next.GetProperty("has_more").GetBoolean());

        var empty = await Wire.GetJsonAsync(tenant, $"/v1/batches?after={ids[^1]}");
        Assert.Equal(0, empty.GetProperty("data").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("first_id").ValueKind);
    }

    [Fact]
    public async Task Another_workspaces_batch_is_a_404_and_is_not_listed()
    {
        var (_, owner) = await _admin.NewTenantAsync("batches-owner");
        var (_, other) = await _admin.NewTenantAsync("batches-other");
        string input = await UploadInputAsync(owner);
        using var created = await CreateAsync(owner, new { input_file_id = input, endpoint = "/v1/chat/completions", completion_window = "24h" });
        string id = (await Wire.JsonAsync(created)).GetProperty("id").GetString()!;

        using var read = await other.GetAsync($"/v1/batches/{id}");
        var error = await Wire.AssertErrorAsync(read, 404, "id");
        Assert.Equal($"No such Batch object: {id}", error.GetProperty("message").GetString());
        using var cancel = await other.PostAsync($"/v1/batches/{id}/cancel", null);
        await Wire.AssertErrorAsync(cancel, 404, "id");
        Assert.Equal(0, (await Wire.GetJsonAsync(other, "/v1/batches")).GetProperty("data").GetArrayLength());

        // Nor may a batch be made of another workspace's file.
        using var foreign = await CreateAsync(other, new { input_file_id = input, endpoint = "/v1/chat/completions", completion_window = "24h" });
        await Wire.AssertErrorAsync(foreign, 400, "input_file_id", "invalid_input_file");
    }

    [Fact]
    public async Task Batch_routes_need_the_batch_scopes()
    {
        var workspace = await _admin.CreateWorkspaceAsync("batches-scopes");
        string id = workspace.GetProperty("id").GetString()!;
        var (_, filesOnly) = await _admin.CreateKeyAsync(id, "files", ["files:read", "files:write"]);
        var (_, readOnly) = await _admin.CreateKeyAsync(id, "read", ["files:read", "files:write", "batches:read"]);
        using var files = fixture.Server.CreateClient(filesOnly);
        using var reader = fixture.Server.CreateClient(readOnly);
        string input = await UploadInputAsync(files);

        using var listed = await files.GetAsync("/v1/batches");
        await Wire.AssertErrorAsync(listed, 403);
        using var refused = await CreateAsync(reader, new { input_file_id = input, endpoint = "/v1/chat/completions", completion_window = "24h" });
        await Wire.AssertErrorAsync(refused, 403);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/v1/batches")).StatusCode);
    }

    public static TheoryData<string, string, string?> BadBodies => new()
    {
        { """{"endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id", null },
        { """{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id", "invalid_input_file" },
        { """{"input_file_id":42,"endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id", "invalid_type" },
        { """{"input_file_id":"$INPUT","completion_window":"24h"}""", "endpoint", null },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/images/generations","completion_window":"24h"}""", "endpoint", "invalid_endpoint" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions"}""", "completion_window", null },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"48h"}""", "completion_window", "invalid_completion_window" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":"x"}""", "metadata", "invalid_metadata" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":1}}""", "metadata", "invalid_metadata" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{"anchor":"created_at","seconds":5}}""", "output_expires_after[seconds]", "invalid_expires_after" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{"anchor":"now","seconds":7200}}""", "output_expires_after[anchor]", "invalid_expires_after" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{"seconds":7200}}""", "output_expires_after", "invalid_output_expires_after" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","execution":"fast"}""", "execution", "invalid_execution" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","provider":"nope"}""", "provider", "unknown_provider" },
        { """{"input_file_id":"$INPUT","endpoint":"/v1/chat/completions","completion_window":"24h","provider":"local"}""", "provider", "unknown_provider" },
        { """{"input_file_id":"$WRONG","endpoint":"/v1/chat/completions","completion_window":"24h"}""", "input_file_id", "invalid_input_file_purpose" },
        { """[1,2]""", "body", "invalid_json" },
        { """{"input_file_id":""", "body", "invalid_json" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task A_bad_create_is_a_400_naming_the_parameter_and_creates_nothing(string body, string param, string? code)
    {
        var (_, tenant) = await _admin.NewTenantAsync("batches-bad-" + Guid.NewGuid().ToString("N")[..8]);
        string input = await UploadInputAsync(tenant);
        string wrong = await UploadInputAsync(tenant, "assistants");
        using var content = new StringContent(body.Replace("$INPUT", input).Replace("$WRONG", wrong), Encoding.UTF8, "application/json");

        using var response = await tenant.PostAsync("/v1/batches", content);

        await Wire.AssertErrorAsync(response, 400, param, code);
        Assert.Equal(0, (await Wire.GetJsonAsync(tenant, "/v1/batches")).GetProperty("data").GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, (await tenant.GetAsync("/readyz")).StatusCode);
    }

    [Theory]
    [InlineData("/v1/batches?limit=0", "limit")]
    [InlineData("/v1/batches?limit=101", "limit")]
    [InlineData("/v1/batches?limit=ten", "limit")]
    [InlineData("/v1/batches?after=batch_123", "after")]
    [InlineData("/v1/batches?after=file-abc", "after")]
    public async Task A_bad_list_query_is_a_400_naming_the_parameter(string url, string param)
    {
        using var client = fixture.Server.CreateClient();
        using var response = await client.GetAsync(url);
        await Wire.AssertErrorAsync(response, 400, param);
    }

    [Theory]
    [InlineData("batch_nope")]
    [InlineData("batch_0123456789abcdef0123456789abcdef")]
    [InlineData("file-abc")]
    public async Task An_unknown_batch_is_a_404_for_read_and_cancel(string id)
    {
        using var client = fixture.Server.CreateClient();
        using var read = await client.GetAsync($"/v1/batches/{id}");
        var error = await Wire.AssertErrorAsync(read, 404, "id");
        Assert.Equal($"No such Batch object: {id}", error.GetProperty("message").GetString());
        using var cancel = await client.PostAsync($"/v1/batches/{id}/cancel", null);
        await Wire.AssertErrorAsync(cancel, 404, "id");
    }
}
