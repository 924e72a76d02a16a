using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Gemini;

/// <summary>
/// Files on a <c>gemini</c> provider through the real server: an upload with the provider goes to Gemini by the
/// resumable protocol and a chat request naming the Wharf file reaches Gemini as <c>fileData</c> with the uploaded
/// file's URI; <c>source=upstream</c> pages by Gemini's page token and shows only the workspace's copies; a copy
/// Gemini dropped after 48 hours is made again; a delete reaches Gemini.
/// </summary>
public sealed class GeminiFilesTests(GeminiFilesFixture fixture) : IClassFixture<GeminiFilesFixture>
{
    private readonly WharfServer _server = fixture.Server;
    private GeminiSimulator Sim => fixture.Gemini;

    private async Task<(string Key, HttpClient Client)> TenantAsync(string name)
    {
        using var admin = new Admin(_server);
        var workspace = await admin.CreateWorkspaceAsync(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        var (_, secret) = await admin.CreateKeyAsync(workspace.GetProperty("id").GetString()!);
        return (secret, _server.CreateClient(secret));
    }

    private static object ChatWithFile(string fileId, string marker) => new
    {
        model = "gem/gemini-2.0-flash",
        messages = new object[]
        {
            new { role = "user", content = new object[] { new { type = "text", text = marker }, new { type = "file", file = new { file_id = fileId } } } },
        },
    };

    /// <summary>The <c>fileData</c> parts of the generateContent calls whose text holds <paramref name="marker"/>.</summary>
    private List<JsonElement> FileDataSent(string marker) =>
        [.. Sim.Requests
            .Where(r => r.Path.EndsWith(":generateContent", StringComparison.Ordinal) && r.BodyText.Contains(marker, StringComparison.Ordinal))
            .Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("contents")[0].GetProperty("parts")[1].GetProperty("fileData").Clone())];

    private GeminiSimulator.SimulatedFile SimFileWith(byte[] content) => Assert.Single(Sim.Files.Values, f => f.Content.AsSpan().SequenceEqual(content));

    [Fact]
    public async Task A_file_uploaded_to_gemini_is_named_in_a_chat_request_by_its_uri()
    {
        var (key, client) = await TenantAsync("gem-chat");
        byte[] content = Encoding.UTF8.GetBytes($"Wharf notes {Guid.NewGuid()}");

        OpenAIFile uploaded = await fixture.FileClient(key).UploadFileAsync(new BinaryData(content), "notes.txt", FileUploadPurpose.UserData);

        Assert.StartsWith("file-", uploaded.Id, StringComparison.Ordinal);
        var copy = SimFileWith(content);
        Assert.Equal("notes.txt", copy.DisplayName);
        Assert.Equal("text/plain", copy.MimeType);
        string marker = "Summarise " + uploaded.Id;
        using var answer = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(uploaded.Id, marker));
        string text = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.IsSuccessStatusCode, text);
        Assert.Equal("chat.completion", JsonDocument.Parse(text).RootElement.GetProperty("object").GetString());

        var fileData = Assert.Single(FileDataSent(marker));
        Assert.Equal(copy.Uri, fileData.GetProperty("fileUri").GetString());
        Assert.Equal("text/plain", fileData.GetProperty("mimeType").GetString());
        // Uploaded once: the chat request used the recorded copy.
        Assert.Single(Sim.Files.Values, f => f.Content.AsSpan().SequenceEqual(content));
    }

    [Fact]
    public async Task The_upstream_listing_pages_by_gemini_s_token_and_keeps_only_the_workspace_s_copies()
    {
        var (key, client) = await TenantAsync("gem-list");
        var files = fixture.FileClient(key);
        // Files on the account that this workspace did not send.
        var foreign = new List<string> { Sim.AddFile("other.txt", "text/plain", "x"u8.ToArray()), Sim.AddFile("other2.txt", "text/plain", "y"u8.ToArray()) };
        var own = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            byte[] content = Encoding.UTF8.GetBytes($"listed {i} {Guid.NewGuid()}");
            await files.UploadFileAsync(new BinaryData(content), $"listed-{i}.txt", FileUploadPurpose.UserData);
            own.Add(SimFileWith(content).Name);
        }
        Sim.AddFile("newest-foreign.txt", "text/plain", "z"u8.ToArray());

        var seen = new List<string>();
        var cursors = new List<string>();
        string? after = null;
        for (int pages = 0; pages < 100; pages++)
        {
            var page = await Wire.GetJsonAsync(client, $"/v1/files?provider={GeminiFilesFixture.ProviderId}&source=upstream&limit=2" + (after is null ? "" : "&after=" + Uri.EscapeDataString(after)));
            seen.AddRange(page.Ids());
            Assert.All(page.GetProperty("data").EnumerateArray(), f => Assert.Equal(GeminiFilesFixture.ProviderId, f.GetProperty("provider").GetString()));
            if (!page.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            after = page.GetProperty("after").GetString()!;
            cursors.Add(after);
        }

        Assert.Equal(own.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(seen, foreign.Contains);
        Assert.True(cursors.Count >= 3, "several pages");
        // The cursor is Gemini's page token, passed back as it came.
        Assert.All(cursors, c => Assert.DoesNotContain(c, Sim.Files.Keys));
        var listings = Sim.Requests.Where(r => r.Method == "GET" && r.Path == "/v1beta/files").Select(r => r.Query).ToList();
        Assert.Contains(listings, q => q.Contains("pageToken=" + Uri.EscapeDataString(cursors[0]), StringComparison.Ordinal));
        Assert.All(listings, q => Assert.Contains("pageSize=2", q, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_copy_gemini_dropped_after_48_hours_is_made_again_when_a_request_needs_it()
    {
        var (_, client) = await TenantAsync("gem-expiry");
        byte[] content = Encoding.UTF8.GetBytes($"kept by Wharf {Guid.NewGuid()}");
        using var form = Wire.Form("user_data", content, "brief.txt");
        using var created = await client.PostAsync("/v1/files", form); // local: copied to Gemini when a request needs it
        string fileId = (await Wire.JsonAsync(created)).Id();

        string marker1 = "First look at " + fileId;
        using (var first = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(fileId, marker1)))
        {
            Assert.True(first.IsSuccessStatusCode, await first.Content.ReadAsStringAsync());
        }
        var firstCopy = SimFileWith(content);
        Assert.Equal(firstCopy.Uri, Assert.Single(FileDataSent(marker1)).GetProperty("fileUri").GetString());

        try
        {
            Sim.ClockOffset = TimeSpan.FromHours(49); // Gemini has dropped it
            Assert.DoesNotContain(Sim.Files.Values, f => f.Content.AsSpan().SequenceEqual(content));

            string marker2 = "Second look at " + fileId;
            using (var second = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile(fileId, marker2)))
            {
                Assert.True(second.IsSuccessStatusCode, await second.Content.ReadAsStringAsync());
            }
            var secondCopy = SimFileWith(content);
            Assert.NotEqual(firstCopy.Name, secondCopy.Name);
            Assert.Equal(secondCopy.Uri, Assert.Single(FileDataSent(marker2)).GetProperty("fileUri").GetString());
            // Wharf looked the old copy up before naming it, and sent the file again.
            Assert.Contains(Sim.Requests, r => r.Method == "GET" && r.Path == "/v1beta/" + firstCopy.Name);
            Assert.Equal(2, Sim.Requests.Count(r => r.Query.Contains("upload_id=", StringComparison.Ordinal) && r.Body.AsSpan().SequenceEqual(content)));

            // The old copy is deleted upstream by the sweeper (Gemini's 404 counts as deleted).
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Sim.Requests.Any(r => r.Method == "DELETE" && r.Path == "/v1beta/" + firstCopy.Name) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            Assert.Contains(Sim.Requests, r => r.Method == "DELETE" && r.Path == "/v1beta/" + firstCopy.Name);
        }
        finally
        {
            Sim.ClockOffset = TimeSpan.Zero;
        }
    }

    [Fact]
    public async Task A_gemini_file_name_gemini_does_not_have_is_the_users_400_naming_the_part()
    {
        var (_, client) = await TenantAsync("gem-missing");

        using var answer = await client.PostAsJsonAsync("/v1/chat/completions", ChatWithFile("files/nosuchfile", "Missing file"));

        string raw = await answer.Content.ReadAsStringAsync();
        using (var envelope = JsonDocument.Parse(raw))
        {
            Assert.Equal("user", envelope.RootElement.GetProperty("error_origin").GetString());
        }
        await Wire.AssertErrorAsync(answer, 400, "messages[0].content[1].file.file_id", "file_not_found");
        Assert.Empty(FileDataSent("Missing file"));
    }

    [Fact]
    public async Task Deleting_the_wharf_file_deletes_its_gemini_copy()
    {
        var (key, _) = await TenantAsync("gem-delete");
        var files = fixture.FileClient(key);
        byte[] content = Encoding.UTF8.GetBytes($"to delete {Guid.NewGuid()}");
        OpenAIFile uploaded = await files.UploadFileAsync(new BinaryData(content), "gone.txt", FileUploadPurpose.UserData);
        string name = SimFileWith(content).Name;

        FileDeletionResult deleted = await files.DeleteFileAsync(uploaded.Id);

        Assert.True(deleted.Deleted);
        Assert.False(Sim.Files.ContainsKey(name));
        Assert.Contains(Sim.Requests, r => r.Method == "DELETE" && r.Path == "/v1beta/" + name);
    }
}
