using System.ClientModel;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.ProviderFiles;

/// <summary>
/// Files on providers through the real server and OpenAI-compatible simulators: upload with a provider, what a
/// refusal keeps (nothing), deletes now and by the sweeper, content after the upstream lost its copy, the provider
/// filter and the provider's own list.
/// </summary>
public sealed class ProviderFilesTests(ProviderFilesFixture fixture) : IClassFixture<ProviderFilesFixture>
{
    private readonly WharfServer _server = fixture.Server;

    private static SimulatedFile Upstream(UpstreamSimulator simulator, string upstreamId) => Assert.Single(simulator.Files, f => f.Id == upstreamId);

    /// <summary>A new workspace and a client with its key: its usage and list start empty.</summary>
    private async Task<(string WorkspaceId, HttpClient Client, string Key)> TenantAsync(string name, IReadOnlyList<string>? allowedProviders = null)
    {
        using var admin = new Admin(_server);
        var workspace = await admin.CreateWorkspaceAsync(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        string id = workspace.GetProperty("id").GetString()!;
        if (allowedProviders is not null)
        {
            using var patch = await admin.Client.PatchAsync($"/admin/workspaces/{id}",
                new StringContent(JsonSerializer.Serialize(new { allowed_providers = allowedProviders }), Encoding.UTF8, "application/json"));
            Assert.True(patch.IsSuccessStatusCode);
        }
        var (_, secret) = await admin.CreateKeyAsync(id);
        return (id, _server.CreateClient(secret), secret);
    }

    private static async Task<HttpResponseMessage> PostFileAsync(HttpClient client, byte[] content, string url = "/v1/files", string? header = null,
        params (string Name, string Value)[] fields)
    {
        using var form = Wire.Form("user_data", content, "notes.txt", fields);
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = form };
        if (header is not null)
        {
            request.Headers.Add("x-model-provider", header);
        }
        return await client.SendAsync(request);
    }

    private int BlobCount() => Directory.Exists(Path.Combine(_server.DataPath, "blobs"))
        ? Directory.EnumerateFiles(Path.Combine(_server.DataPath, "blobs"), "file-*", SearchOption.AllDirectories).Count()
        : 0;

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        for (int i = 0; i < 300 && !condition(); i++)
        {
            await Task.Delay(100);
        }
        Assert.True(condition(), what);
    }

    [Fact]
    public async Task Sdk_upload_with_the_provider_header_creates_the_upstream_file_and_the_client_sees_Wharfs_id()
    {
        var files = fixture.FileClientFor("openai");
        byte[] content = RandomNumberGenerator.GetBytes(200_000);
        int before = fixture.OpenAI.Files.Count;

        OpenAIFile uploaded = await files.UploadFileAsync(new MemoryStream(content), "data.bin", FileUploadPurpose.Assistants);

        Assert.StartsWith("file-", uploaded.Id, StringComparison.Ordinal);
        Assert.Equal(27, uploaded.Id.Length);
        Assert.Equal(content.Length, uploaded.SizeInBytesLong);
        Assert.Equal(before + 1, fixture.OpenAI.Files.Count);
        var upstream = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
        Assert.NotEqual(uploaded.Id, upstream.Id);
        Assert.Equal("data.bin", upstream.Filename);
        Assert.Equal("assistants", upstream.Purpose);
        // The upstream got Wharf's credential for it, never the client's.
        var upload = fixture.OpenAI.Requests.Last(r => r.Method == "POST" && r.Path.EndsWith("/files", StringComparison.Ordinal));
        Assert.Equal("Bearer " + fixture.OpenAI.ApiKey, upload.Header("Authorization"));

        using var client = _server.CreateClient();
        var file = await Wire.GetJsonAsync(client, $"/v1/files/{uploaded.Id}");
        Assert.Equal("openai", file.GetProperty("provider").GetString());
        BinaryData downloaded = await files.DownloadFileAsync(uploaded.Id);
        Assert.Equal(content, downloaded.ToArray());
        var listed = await Wire.GetJsonAsync(client, "/v1/files?provider=openai&limit=100");
        Assert.Contains(uploaded.Id, listed.Ids());
        Assert.DoesNotContain(upstream.Id, listed.Ids());
    }

    [Theory]
    [InlineData("field")]
    [InlineData("query")]
    [InlineData("query-header-name")]
    public async Task The_provider_can_be_a_form_field_or_a_query_parameter(string how)
    {
        var (_, client, _) = await TenantAsync("ways");
        byte[] content = Encoding.UTF8.GetBytes("sent by " + how + " " + Guid.NewGuid());
        using var response = how switch
        {
            "field" => await PostFileAsync(client, content, fields: ("provider", "openai")),
            "query" => await PostFileAsync(client, content, "/v1/files?provider=openai"),
            _ => await PostFileAsync(client, content, "/v1/files?x-model-provider=openai"),
        };
        var file = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, file.ToString());
        Assert.Equal("openai", file.GetProperty("provider").GetString());
        Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(422)]
    public async Task An_upstream_refusal_is_passed_back_and_nothing_is_kept(int status)
    {
        var (workspaceId, client, _) = await TenantAsync("refused");
        int blobs = BlobCount();
        int upstreamFiles = fixture.Flaky.Files.Count;
        fixture.Flaky.Enqueue(Fault.Status(status, JsonSerializer.Serialize(new { error = new { message = "Invalid file format for purpose.", type = "invalid_request_error", param = "file", code = "invalid_file_format" } })));

        using var response = await PostFileAsync(client, "not what the provider wants"u8.ToArray(), header: "flaky");

        var error = await Wire.AssertErrorAsync(response, status, "file", "invalid_file_format");
        Assert.Contains("Invalid file format for purpose.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        var envelope = await Wire.JsonAsync(response);
        Assert.Equal("upstream", envelope.GetProperty("error_origin").GetString());
        Assert.Equal("user", envelope.GetProperty("error_type").GetString());
        Assert.Equal(["flaky"], envelope.GetProperty("failed_providers").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal(status, envelope.GetProperty("failed_statuses")[0].GetInt32());

        Assert.Empty((await Wire.GetJsonAsync(client, "/v1/files")).Ids());
        using var admin = new Admin(_server);
        Assert.Equal(0, (await admin.GetWorkspaceAsync(workspaceId)).GetProperty("storage_usage_bytes").GetInt64());
        Assert.Equal(blobs, BlobCount());
        Assert.Equal(upstreamFiles, fixture.Flaky.Files.Count);
    }

    [Fact]
    public async Task An_upstream_failure_is_a_502_with_diagnostics_and_nothing_is_kept()
    {
        var (workspaceId, client, _) = await TenantAsync("failed");
        int blobs = BlobCount();
        fixture.Flaky.Enqueue(Fault.Status(500));

        using var response = await PostFileAsync(client, "bytes"u8.ToArray(), header: "flaky");

        await Wire.AssertErrorAsync(response, 502);
        var envelope = await Wire.JsonAsync(response);
        Assert.Equal("upstream_error", envelope.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("upstream", envelope.GetProperty("error_origin").GetString());
        Assert.Equal("server_error", envelope.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
        Assert.Equal("flaky", envelope.GetProperty("provider_failure_diagnostics").GetProperty("provider").GetString());
        Assert.Equal(500, envelope.GetProperty("failure_sample")[0].GetProperty("status").GetInt32());
        Assert.DoesNotContain(fixture.Flaky.ApiKey, envelope.ToString(), StringComparison.Ordinal);
        Assert.Empty((await Wire.GetJsonAsync(client, "/v1/files")).Ids());
        using var admin = new Admin(_server);
        Assert.Equal(0, (await admin.GetWorkspaceAsync(workspaceId)).GetProperty("storage_usage_bytes").GetInt64());
        Assert.Equal(blobs, BlobCount());
    }

    [Theory]
    [InlineData("mock", "provider_without_files")]
    [InlineData("nowhere", "unknown_provider")]
    [InlineData("../../etc/passwd\u00e9", "unknown_provider")]
    public async Task A_provider_without_files_or_unknown_is_a_400_on_provider(string provider, string code)
    {
        using var client = _server.CreateClient();
        int blobs = BlobCount();
        using var response = await PostFileAsync(client, "x"u8.ToArray(), "/v1/files?provider=" + Uri.EscapeDataString(provider));
        await Wire.AssertErrorAsync(response, 400, "provider", code);
        Assert.Equal(blobs, BlobCount());

        using var list = await client.GetAsync("/v1/files?source=upstream&provider=" + Uri.EscapeDataString(provider));
        await Wire.AssertErrorAsync(list, 400, "provider", code);
    }

    [Fact]
    public async Task A_provider_outside_the_workspaces_allowed_providers_is_refused()
    {
        var (_, client, _) = await TenantAsync("fenced", ["flaky"]);
        using var response = await PostFileAsync(client, "x"u8.ToArray(), header: "openai");
        await Wire.AssertErrorAsync(response, 400, "provider", "provider_not_enabled");
    }

    /// <summary>Creates an upload with <paramref name="extensions"/> merged into OpenAI's fields; returns its id.</summary>
    private static async Task<HttpResponseMessage> CreateUploadAsync(HttpClient client, long bytes, object extensions, string? header = null)
    {
        var body = JsonSerializer.SerializeToNode(extensions)!.AsObject();
        body["filename"] = "big.jsonl";
        body["purpose"] = "batch";
        body["bytes"] = bytes;
        body["mime_type"] = "application/jsonl";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/uploads")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (header is not null)
        {
            request.Headers.Add("x-model-provider", header);
        }
        return await client.SendAsync(request);
    }

    private static async Task<string> AddUploadPartAsync(HttpClient client, string uploadId, byte[] data)
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent(data), "data", "blob" } };
        using var response = await client.PostAsync($"/v1/uploads/{uploadId}/parts", form);
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.Id();
    }

    private static Task<HttpResponseMessage> CompleteUploadAsync(HttpClient client, string uploadId, params string[] partIds) =>
        client.PostAsync($"/v1/uploads/{uploadId}/complete",
            new StringContent(JsonSerializer.Serialize(new { part_ids = partIds }), Encoding.UTF8, "application/json"));

    /// <summary>
    /// An upload made with the SDK's protocol methods through a client that names the provider (its header): the parts,
    /// in the listed order, reach the provider when it completes, and the file is one kept there, as one uploaded to
    /// <c>POST /v1/files</c> with that provider: listed by the provider filter, its upstream copy deleted with it.
    /// </summary>
    [Fact]
    public async Task An_upload_for_a_provider_is_copied_there_when_it_completes_and_behaves_as_a_file_uploaded_there()
    {
        var files = fixture.FileClientFor("openai");
        byte[] first = RandomNumberGenerator.GetBytes(70_000), second = RandomNumberGenerator.GetBytes(30_001);
        ClientResult created = await files.CreateUploadAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            filename = "big.jsonl", purpose = "batch", bytes = first.Length + second.Length, mime_type = "application/jsonl",
            collection = "to-openai",
        })));
        using var upload = JsonDocument.Parse(created.GetRawResponse().Content);
        Assert.Equal("openai", upload.RootElement.GetProperty("provider").GetString());
        string uploadId = upload.RootElement.GetProperty("id").GetString()!;
        using var client = _server.CreateClient();
        string secondPart = await AddUploadPartAsync(client, uploadId, second);
        string firstPart = await AddUploadPartAsync(client, uploadId, first);
        int before = fixture.OpenAI.Files.Count;

        using var response = await CompleteUploadAsync(client, uploadId, firstPart, secondPart);

        var done = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, done.ToString());
        var file = done.GetProperty("file");
        string fileId = file.Id();
        Assert.Equal("openai", file.GetProperty("provider").GetString());
        Assert.Equal(before + 1, fixture.OpenAI.Files.Count);
        var upstream = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual([.. first, .. second]));
        Assert.Equal(("big.jsonl", "batch"), (upstream.Filename, upstream.Purpose));
        Assert.Contains(fileId, (await Wire.GetJsonAsync(client, "/v1/files?provider=openai&collection=to-openai")).Ids());
        Assert.DoesNotContain(fileId, (await Wire.GetJsonAsync(client, "/v1/files?provider=flaky")).Ids());

        using var deleted = await client.DeleteAsync($"/v1/files/{fileId}");
        Assert.True(deleted.IsSuccessStatusCode);
        await EventuallyAsync(() => fixture.OpenAI.Files.All(f => f.Id != upstream.Id), "the upstream copy is deleted with the file");
    }

    [Fact]
    public async Task An_upstream_failure_at_completion_is_a_502_and_the_upload_stays_pending_to_complete_again()
    {
        var (_, client, _) = await TenantAsync("upload-failed");
        byte[] content = RandomNumberGenerator.GetBytes(5000);
        using var created = await CreateUploadAsync(client, content.Length, new { metadata = new { k = "v" } }, header: "flaky");
        var upload = await Wire.JsonAsync(created);
        Assert.True(created.IsSuccessStatusCode, upload.ToString());
        Assert.Equal("flaky", upload.GetProperty("provider").GetString());
        string partId = await AddUploadPartAsync(client, upload.Id(), content);
        fixture.Flaky.Enqueue(Fault.Status(500));

        using var failed = await CompleteUploadAsync(client, upload.Id(), partId);

        await Wire.AssertErrorAsync(failed, 502);
        var envelope = await Wire.JsonAsync(failed);
        Assert.Equal("upstream", envelope.GetProperty("error_origin").GetString());
        Assert.Equal("flaky", envelope.GetProperty("provider_failure_diagnostics").GetProperty("provider").GetString());
        Assert.DoesNotContain(fixture.Flaky.ApiKey, envelope.ToString(), StringComparison.Ordinal);
        Assert.Equal("pending", (await Wire.GetJsonAsync(client, $"/v1/uploads/{upload.Id()}")).GetProperty("status").GetString());
        Assert.Empty((await Wire.GetJsonAsync(client, "/v1/files")).Ids());

        using var again = await CompleteUploadAsync(client, upload.Id(), partId);
        var done = await Wire.JsonAsync(again);
        Assert.True(again.IsSuccessStatusCode, done.ToString());
        string fileId = done.GetProperty("file").Id();
        Assert.Equal([fileId], (await Wire.GetJsonAsync(client, "/v1/files?provider=flaky&metadata.k=v")).Ids());
        Assert.Single(fixture.Flaky.Files, f => f.Content.AsSpan().SequenceEqual(content));
    }

    [Theory]
    [InlineData("mock", "provider_without_files")]
    [InlineData("nowhere", "unknown_provider")]
    public async Task An_upload_for_a_provider_without_files_or_unknown_is_a_400_on_provider(string provider, string code)
    {
        using var client = _server.CreateClient();
        using var inBody = await CreateUploadAsync(client, 10, new { provider });
        await Wire.AssertErrorAsync(inBody, 400, "provider", code);
        using var inHeader = await CreateUploadAsync(client, 10, new { }, header: provider);
        await Wire.AssertErrorAsync(inHeader, 400, "provider", code);
    }

    [Fact]
    public async Task An_upload_for_a_provider_outside_the_workspaces_allowed_providers_is_refused()
    {
        var (_, client, _) = await TenantAsync("upload-fenced", ["flaky"]);
        using var response = await CreateUploadAsync(client, 10, new { provider = "openai" });
        await Wire.AssertErrorAsync(response, 400, "provider", "provider_not_enabled");
    }

    [Fact]
    public async Task Delete_removes_the_upstream_copy()
    {
        var files = fixture.FileClientFor("openai");
        byte[] content = Encoding.UTF8.GetBytes("to delete " + Guid.NewGuid());
        OpenAIFile uploaded = await files.UploadFileAsync(new MemoryStream(content), "gone.txt", FileUploadPurpose.UserData);
        string upstreamId = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content)).Id;

        FileDeletionResult deleted = await files.DeleteFileAsync(uploaded.Id);

        Assert.True(deleted.Deleted);
        Assert.DoesNotContain(fixture.OpenAI.Files, f => f.Id == upstreamId);
        Assert.Contains(fixture.OpenAI.Requests, r => r.Method == "DELETE" && r.Path.EndsWith("/files/" + upstreamId, StringComparison.Ordinal));
        var again = await Assert.ThrowsAsync<ClientResultException>(() => files.GetFileAsync(uploaded.Id));
        Assert.Equal(404, again.Status);
    }

    [Fact]
    public async Task A_failing_upstream_delete_is_retried_by_the_sweeper_until_the_provider_has_it_deleted()
    {
        using var client = _server.CreateClient();
        byte[] content = Encoding.UTF8.GetBytes("flaky delete " + Guid.NewGuid());
        using var created = await PostFileAsync(client, content, header: "flaky");
        string fileId = (await Wire.JsonAsync(created)).Id();
        string upstreamId = Assert.Single(fixture.Flaky.Files, f => f.Content.AsSpan().SequenceEqual(content)).Id;
        int deletesBefore = fixture.Flaky.Requests.Count(r => r.Method == "DELETE");
        fixture.Flaky.Enqueue(Fault.Status(503));
        fixture.Flaky.Enqueue(Fault.Status(500));

        using var deleted = await client.DeleteAsync($"/v1/files/{fileId}");

        // Gone from Wharf at once, though the provider still holds its copy.
        Assert.True(deleted.IsSuccessStatusCode);
        using (var get = await client.GetAsync($"/v1/files/{fileId}"))
        {
            await Wire.AssertErrorAsync(get, 404, "id");
        }
        Assert.Contains(fixture.Flaky.Files, f => f.Id == upstreamId);

        await EventuallyAsync(() => fixture.Flaky.Files.All(f => f.Id != upstreamId), "the sweeper deleted the upstream copy");
        var deletes = fixture.Flaky.Requests.Where(r => r.Method == "DELETE").Skip(deletesBefore).ToList();
        Assert.Equal(3, deletes.Count);
        Assert.All(deletes, r => Assert.EndsWith("/files/" + upstreamId, r.Path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Content_is_served_by_Wharf_after_the_upstream_lost_its_copy()
    {
        using var client = _server.CreateClient();
        byte[] content = RandomNumberGenerator.GetBytes(50_000);
        using var created = await PostFileAsync(client, content, header: "openai");
        string fileId = (await Wire.JsonAsync(created)).Id();
        string upstreamId = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content)).Id;
        using (var upstream = new HttpClient())
        {
            upstream.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", fixture.OpenAI.ApiKey);
            using var lost = await upstream.DeleteAsync(new Uri(fixture.OpenAI.BaseUrl + "/files/" + upstreamId));
            Assert.True(lost.IsSuccessStatusCode);
        }
        int upstreamCalls = fixture.OpenAI.Requests.Count;

        using var download = await client.GetAsync($"/v1/files/{fileId}/content");

        Assert.True(download.IsSuccessStatusCode);
        Assert.Equal(content, await download.Content.ReadAsByteArrayAsync());
        Assert.Equal(upstreamCalls, fixture.OpenAI.Requests.Count);

        // Its delete meets the upstream's 404, which counts as deleted.
        using var deleted = await client.DeleteAsync($"/v1/files/{fileId}");
        Assert.True(deleted.IsSuccessStatusCode);
    }

    [Fact]
    public async Task The_provider_filter_lists_files_with_a_copy_there_and_local_lists_all()
    {
        var (_, client, _) = await TenantAsync("filter");
        var onOpenAI = new List<string>();
        var local = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            using var up = await PostFileAsync(client, Encoding.UTF8.GetBytes($"up {i} {Guid.NewGuid()}"), header: "openai");
            onOpenAI.Add((await Wire.JsonAsync(up)).Id());
            using var here = await PostFileAsync(client, Encoding.UTF8.GetBytes($"here {i}"));
            local.Add((await Wire.JsonAsync(here)).Id());
        }
        onOpenAI.Reverse();

        Assert.Equal(onOpenAI, (await Wire.GetJsonAsync(client, "/v1/files?provider=openai")).Ids());
        Assert.Equal(onOpenAI, (await Wire.GetJsonAsync(client, "/v1/files?x-model-provider=openai")).Ids());
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/files"))
        {
            request.Headers.Add("x-model-provider", "openai");
            using var response = await client.SendAsync(request);
            Assert.Equal(onOpenAI, (await Wire.JsonAsync(response)).Ids());
        }
        var paged = await Wire.GetJsonAsync(client, $"/v1/files?provider=openai&limit=2");
        Assert.Equal(onOpenAI[..2], paged.Ids());
        Assert.True(paged.GetProperty("has_more").GetBoolean());
        var rest = await Wire.GetJsonAsync(client, $"/v1/files?provider=openai&limit=2&after={paged.GetProperty("last_id").GetString()}");
        Assert.Equal(onOpenAI[2..], rest.Ids());
        Assert.False(rest.GetProperty("has_more").GetBoolean());
        Assert.Empty((await Wire.GetJsonAsync(client, "/v1/files?provider=flaky")).Ids());
        Assert.Equal(6, (await Wire.GetJsonAsync(client, "/v1/files?provider=local")).Ids().Count);
        using var unknown = await client.GetAsync("/v1/files?provider=nowhere");
        await Wire.AssertErrorAsync(unknown, 400, "provider", "unknown_provider");
    }

    [Fact]
    public async Task Source_upstream_lists_the_workspaces_own_copies_with_the_providers_paging()
    {
        var (_, client, _) = await TenantAsync("upstream-list");
        // Files the provider holds that no workspace sent: on a shared account, they are nobody's to see.
        var natives = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            natives.Add(fixture.OpenAI.AddFile($"native-{i}.jsonl", "batch", Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"), createdAt: 4_000_000_000 + i).Id);
        }
        // The workspace's own copies, sent through Wharf.
        var added = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            byte[] content = Encoding.UTF8.GetBytes($"own {i} {Guid.NewGuid()}");
            using var sent = await PostFileAsync(client, content, "/v1/files?provider=openai");
            Assert.True(sent.IsSuccessStatusCode);
            added.Add(Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content)).Id);
        }

        var page = await Wire.GetJsonAsync(client, "/v1/files?provider=openai&source=upstream&limit=2");
        var first = page.GetProperty("data")[0];
        Assert.Equal("file", first.GetProperty("object").GetString());
        Assert.Equal("openai", first.GetProperty("provider").GetString());
        Assert.Equal("notes.txt", first.GetProperty("filename").GetString());
        var all = await Wire.GetJsonAsync(client, "/v1/files?provider=openai&source=upstream");
        Assert.Equal(added.Order(StringComparer.Ordinal), all.Ids().Order(StringComparer.Ordinal));
        Assert.DoesNotContain(all.Ids(), natives.Contains);

        // Paging is the provider's: the cursor moves on even when the page kept fewer files than it listed.
        var seen = new List<string>();
        string? after = null;
        for (int pages = 0; pages < 1000; pages++)
        {
            var one = await Wire.GetJsonAsync(client, "/v1/files?provider=openai&source=upstream&limit=1" + (after is null ? "" : "&after=" + after));
            seen.AddRange(one.Ids());
            if (!one.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            string last = one.GetProperty("last_id").GetString()!;
            Assert.NotEqual(after, last);
            after = last;
        }
        Assert.Equal(added.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        var query = fixture.OpenAI.Requests.Last(r => r.Method == "GET" && r.Path.EndsWith("/files", StringComparison.Ordinal)).Query;
        Assert.Contains("limit=1", query, StringComparison.Ordinal);

        // Without source=upstream (all the SDK can send, the provider as a header) it is Wharf's catalog: its ids only.
        OpenAIFileCollection listed = await fixture.FileClientFor("openai").GetFilesAsync();
        Assert.All(listed, f => Assert.Equal(27, f.Id.Length));
        Assert.DoesNotContain(listed, f => added.Contains(f.Id) || natives.Contains(f.Id));

        using var bad = await client.GetAsync("/v1/files?provider=openai&source=elsewhere");
        await Wire.AssertErrorAsync(bad, 400, "source", "invalid_source");
        using var none = await client.GetAsync("/v1/files?source=upstream");
        await Wire.AssertErrorAsync(none, 400, "provider");
    }

    [Fact]
    public async Task Another_workspaces_upstream_copy_is_neither_listed_nor_usable()
    {
        var (_, owner, _) = await TenantAsync("owner");
        var (_, intruder, _) = await TenantAsync("intruder");
        byte[] content = Encoding.UTF8.GetBytes("owner's secret " + Guid.NewGuid());
        using (var sent = await PostFileAsync(owner, content, "/v1/files?provider=openai"))
        {
            Assert.True(sent.IsSuccessStatusCode);
        }
        string theirUpstream = Upstream(fixture.OpenAI, Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content)).Id).Id;

        var listed = await Wire.GetJsonAsync(intruder, "/v1/files?provider=openai&source=upstream");
        Assert.DoesNotContain(theirUpstream, listed.Ids());
        var ownerListed = await Wire.GetJsonAsync(owner, "/v1/files?provider=openai&source=upstream");
        Assert.Contains(theirUpstream, ownerListed.Ids());

        int chats = fixture.OpenAI.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));
        var chat = new
        {
            model = "openai/gpt-4o-mini",
            messages = new object[] { new { role = "user", content = new object[] { new { type = "file", file = new { file_id = theirUpstream } } } } },
        };
        using var answer = await intruder.PostAsync("/v1/chat/completions",
            new StringContent(JsonSerializer.Serialize(chat), Encoding.UTF8, "application/json"));
        var error = await Wire.AssertErrorAsync(answer, 400, "messages[0].content[0].file.file_id", "file_not_found");
        Assert.Equal($"No such File object: {theirUpstream}", error.GetProperty("message").GetString());
        Assert.Equal(chats, fixture.OpenAI.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)));
    }
}
