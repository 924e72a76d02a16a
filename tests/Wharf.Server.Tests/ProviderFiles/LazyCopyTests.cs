using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ProviderFiles;

/// <summary>
/// Wharf file ids in model requests, through the real server to a simulator: copied to the provider once, the
/// request sent with the provider's id; another workspace's id is refused and never copied.
/// </summary>
public sealed class LazyCopyTests(ProviderFilesFixture fixture) : IClassFixture<ProviderFilesFixture>
{
    private readonly WharfServer _server = fixture.Server;

    private async Task<(HttpClient Client, string FileId, byte[] Content)> TenantWithFileAsync(string name)
    {
        using var admin = new Admin(_server);
        var (_, client) = await admin.NewTenantAsync(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        byte[] content = Encoding.UTF8.GetBytes($"%PDF-1.4 {name} {Guid.NewGuid()}");
        using var form = Wire.Form("user_data", content, "brief.pdf");
        using var created = await client.PostAsync("/v1/files", form);
        var file = await Wire.JsonAsync(created);
        Assert.True(created.IsSuccessStatusCode, file.ToString());
        return (client, file.Id(), content);
    }

    private static object ChatWithFile(string fileId) => new
    {
        model = "openai/gpt-4o-mini",
        messages = new object[]
        {
            new { role = "user", content = new object[] { new { type = "text", text = "Summarise " + fileId }, new { type = "file", file = new { file_id = fileId } } } },
        },
    };

    private List<Simulators.RecordedRequest> ChatRequests(string marker) =>
        [.. fixture.OpenAI.Requests.Where(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal) && r.BodyText.Contains(marker, StringComparison.Ordinal))];

    [Fact]
    public async Task A_chat_file_part_is_copied_once_and_sent_with_the_providers_id()
    {
        var (client, fileId, content) = await TenantWithFileAsync("chat");

        using var first = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(fileId));
        Assert.True(first.IsSuccessStatusCode, await first.Content.ReadAsStringAsync());
        using var second = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(fileId));
        Assert.True(second.IsSuccessStatusCode);

        var copy = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
        Assert.Equal("brief.pdf", copy.Filename);
        var sent = ChatRequests("Summarise " + fileId);
        Assert.Equal(2, sent.Count);
        foreach (var request in sent)
        {
            using var body = JsonDocument.Parse(request.Body);
            var part = body.RootElement.GetProperty("messages")[0].GetProperty("content")[1];
            Assert.Equal(copy.Id, part.GetProperty("file").GetProperty("file_id").GetString());
            Assert.Equal("gpt-4o-mini", body.RootElement.GetProperty("model").GetString());
        }
        // The file is now listed as having a copy there.
        Assert.Contains(fileId, (await Wire.GetJsonAsync(client, "/v1/files?provider=openai")).Ids());
    }

    [Fact]
    public async Task Concurrent_requests_copy_a_file_once()
    {
        var (client, fileId, content) = await TenantWithFileAsync("concurrent");

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(fileId))));

        Assert.All(answers, a => Assert.True(a.IsSuccessStatusCode));
        foreach (var answer in answers)
        {
            answer.Dispose();
        }
        var copy = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
        Assert.Single(fixture.OpenAI.Requests, r => r.Upload is { } u && u.Content.AsSpan().SequenceEqual(content));
        Assert.All(ChatRequests("Summarise " + fileId), r => Assert.Contains(copy.Id, r.BodyText, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_responses_input_file_is_rewritten()
    {
        var (client, fileId, content) = await TenantWithFileAsync("responses");
        var body = new
        {
            model = "openai/gpt-4o",
            input = new object[] { new { role = "user", content = new object[] { new { type = "input_file", file_id = fileId }, new { type = "input_text", text = "marker-" + fileId } } } },
        };

        using var answer = await client.PostAsJsonAsync("/v1/responses", body);

        Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
        var copy = Assert.Single(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
        var sent = Assert.Single(fixture.OpenAI.Requests, r => r.Path.EndsWith("/responses", StringComparison.Ordinal) && r.BodyText.Contains("marker-" + fileId, StringComparison.Ordinal));
        using var json = JsonDocument.Parse(sent.Body);
        Assert.Equal(copy.Id, json.RootElement.GetProperty("input")[0].GetProperty("content")[0].GetProperty("file_id").GetString());
    }

    [Fact]
    public async Task Another_workspaces_file_id_is_refused_and_never_copied()
    {
        var (_, theirs, content) = await TenantWithFileAsync("owner");
        var (mine, _, _) = await TenantWithFileAsync("intruder");
        int requests = fixture.OpenAI.Requests.Count;

        using var answer = await mine.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(theirs));

        var error = await Wire.AssertErrorAsync(answer, 400, "messages[0].content[1].file.file_id", "file_not_found");
        Assert.Equal($"No such File object: {theirs}", error.GetProperty("message").GetString());
        Assert.Equal(requests, fixture.OpenAI.Requests.Count);
        Assert.DoesNotContain(fixture.OpenAI.Files, f => f.Content.AsSpan().SequenceEqual(content));
    }
}
