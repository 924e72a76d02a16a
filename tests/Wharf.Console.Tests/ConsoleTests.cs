using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Wharf.Console.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Wharf.Console.Tests;

[CollectionDefinition(Name)]
public sealed class ConsoleCollection : ICollectionFixture<ConsoleFixture>
{
    public const string Name = "console";
}

/// <summary>
/// The web console end to end: the real server, the console as it ships, a real headless Chromium clicking through
/// it as a user would (elements found by their role and label). Each test saves a screenshot of each page it sees.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleTests(ConsoleFixture fixture)
{
    private ConsoleServer Server => fixture.Server;

    [Fact]
    public async Task A_wrong_key_shows_invalid_key_and_keeps_nothing()
    {
        await using var console = await fixture.OpenAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await console.ScreenshotAsync("01-sign-in");

        await console.SignInAsync("sk-wh-this-key-does-not-exist");

        var alert = console.Page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Invalid key" });
        await Expect(alert).ToBeVisibleAsync();
        await console.ScreenshotAsync("02-sign-in-invalid-key");
        Assert.Null(await console.Page.EvaluateAsync<string?>("() => sessionStorage.getItem('wharf.console.key')"));
        await Expect(console.Page.GetByRole(AriaRole.Navigation, new() { Name = "Main" })).ToBeHiddenAsync();
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task Signing_in_keeps_the_key_in_the_session_only_and_never_in_a_url()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);

        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();
        Assert.Equal(ConsoleServer.Key, await console.Page.EvaluateAsync<string?>("() => sessionStorage.getItem('wharf.console.key')"));
        Assert.Null(await console.Page.EvaluateAsync<string?>("() => localStorage.getItem('wharf.console.key')"));
        Assert.Empty(await console.Context.CookiesAsync());
        Assert.DoesNotContain(console.RequestedUrls, url => url.Contains(ConsoleServer.Key, StringComparison.Ordinal));

        // Signing out forgets it.
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        Assert.Null(await console.Page.EvaluateAsync<string?>("() => sessionStorage.getItem('wharf.console.key')"));
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task A_file_chosen_in_the_file_input_is_uploaded_with_progress_and_listed()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        string name = $"notes-{Guid.NewGuid():N}.txt";
        byte[] content = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("a line of the console's upload test\n", 20_000)));

        await console.Page.GetByLabel("Purpose", new() { Exact = true }).First.SelectOptionAsync("user_data");
        await console.Page.GetByLabel("choose files").SetInputFilesAsync(new FilePayload { Name = name, MimeType = "text/plain", Buffer = content });

        await Expect(console.Page.GetByRole(AriaRole.Link, new() { Name = name })).ToBeVisibleAsync();
        var progress = console.Page.GetByRole(AriaRole.Progressbar, new() { Name = "Upload progress" });
        await Expect(progress).ToHaveAttributeAsync("value", content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(console.Page.GetByText($"{name}: ")).ToContainTextAsync("(100%)");
        await console.ScreenshotAsync("03-files-uploaded");

        // What the API holds is what was chosen, with the purpose chosen.
        var listed = await FindFileAsync(name);
        Assert.Equal("user_data", listed.GetProperty("purpose").GetString());
        using var client = Server.CreateClient();
        Assert.Equal(content, await client.GetByteArrayAsync($"/v1/files/{listed.GetProperty("id").GetString()}/content"));

        // Its page shows its metadata.
        await console.Page.GetByRole(AriaRole.Link, new() { Name = name }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = name })).ToBeVisibleAsync();
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "File details" })).ToContainTextAsync(listed.GetProperty("sha256").GetString()!);
        await console.ScreenshotAsync("04-file-detail");

        // Downloaded through the console, with its byte count: the same bytes.
        var download = await console.Page.RunAndWaitForDownloadAsync(() => console.Page.GetByRole(AriaRole.Button, new() { Name = "Download" }).ClickAsync());
        Assert.Equal(name, download.SuggestedFilename);
        Assert.Equal(content, await File.ReadAllBytesAsync((await download.PathAsync())!));
        await Expect(console.Page.GetByText($"{name}: downloaded")).ToBeVisibleAsync();

        // And deleted from there.
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();
        await Expect(console.Page.GetByRole(AriaRole.Link, new() { Name = name })).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/v1/files/{listed.GetProperty("id").GetString()}")).StatusCode);
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task A_file_larger_than_a_part_goes_through_the_uploads_api_in_parts_with_progress()
    {
        const long size = 40L * 1024 * 1024 + 123; // two parts of the console's 32 MiB and a short one
        string name = $"large-{Guid.NewGuid():N}.bin";
        string path = Path.Combine(Path.GetTempPath(), name);
        var random = new Random(16);
        byte[] block = new byte[1024 * 1024];
        using (var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256))
        {
            await using (var file = File.Create(path))
            {
                for (long written = 0; written < size; written += block.Length)
                {
                    random.NextBytes(block);
                    int count = (int)Math.Min(block.Length, size - written);
                    await file.WriteAsync(block.AsMemory(0, count));
                    sha.AppendData(block, 0, count);
                }
            }
            string expectedSha = Convert.ToHexStringLower(sha.GetHashAndReset());
            try
            {
                await using var console = await fixture.OpenAsync();
                await console.SignInAsync(ConsoleServer.Key);
                await console.Page.GetByLabel("choose files").SetInputFilesAsync(path);

                await Expect(console.Page.GetByRole(AriaRole.Link, new() { Name = name })).ToBeVisibleAsync(new() { Timeout = 60_000 });
                await Expect(console.Page.GetByText($"{name}: ")).ToContainTextAsync("(100%)");
                var listed = await FindFileAsync(name);
                Assert.Equal(size, listed.GetProperty("bytes").GetInt64());
                Assert.Equal(expectedSha, listed.GetProperty("sha256").GetString());
                // It came through the Uploads API: part requests, then complete.
                Assert.Contains(console.RequestedUrls, url => url.EndsWith("/complete", StringComparison.Ordinal) && url.Contains("/v1/uploads/", StringComparison.Ordinal));
                Assert.Equal(2, console.RequestedUrls.Count(url => url.EndsWith("/parts", StringComparison.Ordinal)));
                Assert.Empty(console.ScriptErrors);
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    [Fact]
    public async Task A_file_dropped_on_the_drop_zone_is_uploaded_and_listed()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        string name = $"dropped-{Guid.NewGuid():N}.jsonl";

        // A drop as the browser delivers one: a drop event whose DataTransfer holds the file.
        var transfer = await console.Page.EvaluateHandleAsync(
            "name => { const t = new DataTransfer(); t.items.add(new File(['{\"a\":1}\\n'], name, { type: 'application/jsonl' })); return t; }", name);
        var zone = console.Page.GetByRole(AriaRole.Region, new() { Name = "Drop zone" });
        await zone.DispatchEventAsync("dragover", new Dictionary<string, object> { ["dataTransfer"] = transfer });
        await zone.DispatchEventAsync("drop", new Dictionary<string, object> { ["dataTransfer"] = transfer });

        await Expect(console.Page.GetByRole(AriaRole.Link, new() { Name = name })).ToBeVisibleAsync();
        await Expect(console.Page.GetByText($"{name}: ")).ToContainTextAsync("(100%)");
        var listed = await FindFileAsync(name);
        Assert.Equal("batch", listed.GetProperty("purpose").GetString()); // the upload's default purpose
        Assert.Equal(8, listed.GetProperty("bytes").GetInt64());
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task The_file_list_filters_by_metadata_and_purpose_and_pages_with_its_cursors()
    {
        string team = "t" + Guid.NewGuid().ToString("N")[..8];
        using var client = Server.CreateClient();
        var names = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            string name = $"{team}-{i}.txt";
            using var form = new MultipartFormDataContent
            {
                { new StringContent("user_data"), "purpose" },
                { new StringContent($$"""{"team":"{{team}}","n":"{{i}}"}"""), "metadata" },
                { new ByteArrayContent("x"u8.ToArray()), "file", name },
            };
            using var answer = await client.PostAsync("/v1/files", form);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            names.Add(name);
        }

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await console.Page.GetByLabel("Metadata (key=value, …)").FillAsync($"team={team}");
        await console.Page.GetByLabel("Purpose", new() { Exact = true }).Nth(1).SelectOptionAsync("user_data");
        await console.Page.GetByLabel("Order").SelectOptionAsync("asc");
        await console.Page.GetByLabel("Per page").FillAsync("2");
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();

        var list = console.Page.GetByRole(AriaRole.Region, new() { Name = "File list" });
        await Expect(list.GetByRole(AriaRole.Link)).ToHaveTextAsync([names[0], names[1]]);
        await console.ScreenshotAsync("15-files-filtered");
        await list.GetByRole(AriaRole.Button, new() { Name = "Next page" }).ClickAsync();
        await Expect(list.GetByRole(AriaRole.Link)).ToHaveTextAsync([names[2]]);
        await Expect(list.GetByRole(AriaRole.Button, new() { Name = "Next page" })).ToBeDisabledAsync();
        await list.GetByRole(AriaRole.Button, new() { Name = "Previous page" }).ClickAsync();
        await Expect(list.GetByRole(AriaRole.Link)).ToHaveTextAsync([names[0], names[1]]);

        // A file's page shows its metadata.
        await list.GetByRole(AriaRole.Link, new() { Name = names[1] }).ClickAsync();
        var metadata = console.Page.GetByRole(AriaRole.Region, new() { Name = "Metadata" });
        await Expect(metadata.GetByRole(AriaRole.Row).Filter(new() { HasText = team })).ToContainTextAsync("team");
        await Expect(metadata.GetByRole(AriaRole.Cell, new() { Name = "n", Exact = true })).ToBeVisibleAsync();
        await Expect(metadata.GetByRole(AriaRole.Cell, new() { Name = "1", Exact = true })).ToBeVisibleAsync();
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task Bad_input_shows_the_error_envelope_message_not_a_stack_trace()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();

        await console.Page.GetByLabel("Per page").FillAsync("0");
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();

        // The API's own message for this input, with the field it is about.
        using var client = Server.CreateClient();
        using var refused = await client.GetAsync("/v1/files?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        using var answer = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        string message = answer.RootElement.GetProperty("error").GetProperty("message").GetString()!;
        var alert = console.Page.Locator("#alert");
        await Expect(alert).ToContainTextAsync(message);
        await Expect(alert).ToContainTextAsync("field: limit");
        await Expect(alert).Not.ToContainTextAsync(" at ");
        await console.ScreenshotAsync("05-files-bad-input");
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task A_batch_on_the_mock_provider_is_seen_running_then_complete_and_its_output_downloads()
    {
        const int lines = 16; // two at a time at the slow mock's pace: at least three seconds of running
        string name = $"batch-input-{Guid.NewGuid():N}.jsonl";
        var input = new StringBuilder();
        for (int i = 0; i < lines; i++)
        {
            input.Append($$$"""{"custom_id":"line-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"slowmock/demo","messages":[{"role":"user","content":"hello {{{i}}}"}]}}""").Append('\n');
        }
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await console.Page.GetByLabel("choose files").SetInputFilesAsync(new FilePayload { Name = name, MimeType = "application/jsonl", Buffer = Encoding.UTF8.GetBytes(input.ToString()) });
        await Expect(console.Page.GetByRole(AriaRole.Link, new() { Name = name })).ToBeVisibleAsync();

        await console.Page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Batches" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "New batch" })).ToBeVisibleAsync();
        await console.Page.GetByLabel("Input file").SelectOptionAsync(new SelectOptionValue { Label = $"{name} ({(await FindFileAsync(name)).GetProperty("id").GetString()})" });
        await console.Page.GetByLabel("Endpoint").SelectOptionAsync("/v1/chat/completions");
        await console.ScreenshotAsync("06-batches");
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Create batch" }).ClickAsync();

        // The detail page shows the batch before it ends (each line takes the slow mock a while, two at a time), then
        // its counts move to the end.
        var status = console.Page.GetByLabel("Batch status");
        await Expect(status).ToBeVisibleAsync();
        Assert.NotEqual("completed", await status.TextContentAsync());
        // Every value the progress bar takes, as the page sets it (a value set is an attribute change).
        var progress = console.Page.GetByRole(AriaRole.Progressbar, new() { Name = "Batch progress" });
        await progress.EvaluateAsync("""
            bar => {
                window.progressSeen = [bar.value];
                new MutationObserver(() => window.progressSeen.push(bar.value)).observe(bar, { attributes: true });
            }
            """);
        await console.ScreenshotAsync("07-batch-running");
        await Expect(status).ToHaveTextAsync("completed", new() { Timeout = 60_000 });
        double[] seen = await console.Page.EvaluateAsync<double[]>("() => window.progressSeen");
        Assert.Contains(seen, value => value > 0 && value < lines); // the counts moved while it ran
        Assert.Equal(seen.Order(), seen); // and only forward
        await Expect(progress).ToHaveAttributeAsync("value", lines.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(console.Page.GetByText($"completed: {lines} completed, 0 failed of {lines} requests (100%)")).ToBeVisibleAsync();
        await Expect(console.Page.GetByRole(AriaRole.Button, new() { Name = "Cancel batch" })).ToHaveCountAsync(0);
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "Batch progress" })).Not.ToContainTextAsync("null");
        await console.ScreenshotAsync("08-batch-completed");

        var download = await console.Page.RunAndWaitForDownloadAsync(() => console.Page.GetByRole(AriaRole.Button, new() { Name = "Download output" }).ClickAsync());
        string[] output = (await File.ReadAllLinesAsync((await download.PathAsync())!)).Where(l => l.Length > 0).ToArray();
        Assert.Equal(lines, output.Length);
        Assert.All(output, line => Assert.Equal(200, JsonDocument.Parse(line).RootElement.GetProperty("response").GetProperty("status_code").GetInt32()));

        // The list shows it too.
        await console.Page.GetByRole(AriaRole.Link, new() { Name = "← Batches" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "Batch list" })).ToContainTextAsync($"{lines} / {lines}");
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task A_running_batch_is_cancelled_from_its_page()
    {
        const int lines = 40; // 40 lines, two at a time at the slow mock's pace: running for seconds
        var input = new StringBuilder();
        for (int i = 0; i < lines; i++)
        {
            input.Append($$$"""{"custom_id":"c-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"slowmock/demo","messages":[{"role":"user","content":"{{{i}}}"}]}}""").Append('\n');
        }
        using var client = Server.CreateClient();

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();
        // Created once the console is signed in, so that it still runs when its page opens.
        string batchId = await CreateBatchAsync(client, input.ToString());
        await console.Page.GotoAsync(Server.ConsoleAddress + "#/batches/" + batchId);
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Cancel batch" }).ClickAsync();

        await Expect(console.Page.GetByLabel("Batch status")).ToHaveTextAsync("cancelled", new() { Timeout = 60_000 });
        await console.ScreenshotAsync("09-batch-cancelled");
        using var batch = JsonDocument.Parse(await client.GetStringAsync($"/v1/batches/{batchId}"));
        Assert.Equal("cancelled", batch.RootElement.GetProperty("status").GetString());
        Assert.True(batch.RootElement.GetProperty("request_counts").GetProperty("completed").GetInt32() < lines);
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task A_failed_poll_is_shown_and_the_batch_page_keeps_updating_to_completion()
    {
        // Two at a time at the slow mock's pace: about 6 s of running, so the batch is still running when the page
        // first reads it (the batch is created only once the console is signed in, just before the page opens).
        const int lines = 30;
        var input = new StringBuilder();
        for (int i = 0; i < lines; i++)
        {
            input.Append($$$"""{"custom_id":"p-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"slowmock/demo","messages":[{"role":"user","content":"{{{i}}}"}]}}""").Append('\n');
        }
        using var client = Server.CreateClient();

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();
        string batchId = await CreateBatchAsync(client, input.ToString());
        // The page's first read of the batch goes through; its first poll fails as a dropped connection does.
        int reads = 0;
        await console.Page.RouteAsync(new System.Text.RegularExpressions.Regex($"/v1/batches/{batchId}$"), async route =>
        {
            if (Interlocked.Increment(ref reads) == 2)
            {
                await route.AbortAsync("connectionreset");
            }
            else
            {
                await route.ContinueAsync();
            }
        });
        await console.Page.GotoAsync(Server.ConsoleAddress + "#/batches/" + batchId);

        var alert = console.Page.Locator("#alert");
        await Expect(alert).ToContainTextAsync("could not be reached");
        await console.ScreenshotAsync("16-batch-poll-failed");
        await Expect(console.Page.GetByLabel("Batch status")).ToHaveTextAsync("completed", new() { Timeout = 60_000 });
        await Expect(console.Page.GetByRole(AriaRole.Progressbar, new() { Name = "Batch progress" }))
            .ToHaveAttributeAsync("value", lines.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(alert).ToHaveTextAsync(""); // the poll's error is gone once a poll answers again
        Assert.True(Volatile.Read(ref reads) >= 3);
    }

    [Fact]
    public async Task The_page_of_a_batch_that_has_ended_reads_it_once_and_does_not_poll()
    {
        using var client = Server.CreateClient();
        string batchId = await CreateBatchAsync(client,
            """{"custom_id":"done","method":"POST","url":"/v1/chat/completions","body":{"model":"mock/demo","messages":[{"role":"user","content":"hi"}]}}""" + "\n");
        for (var deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(200))
        {
            using var batch = JsonDocument.Parse(await client.GetStringAsync($"/v1/batches/{batchId}"));
            if (batch.RootElement.GetProperty("status").GetString() == "completed")
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the batch did not complete");
        }

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();
        await console.Page.GotoAsync(Server.ConsoleAddress + "#/batches/" + batchId);
        await Expect(console.Page.GetByLabel("Batch status")).ToHaveTextAsync("completed");
        await console.Page.WaitForTimeoutAsync(3_000); // three poll intervals

        Assert.Equal(1, console.RequestedUrls.Count(url => url.EndsWith($"/v1/batches/{batchId}", StringComparison.Ordinal)));
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task Markup_in_a_filename_a_metadata_value_or_an_error_message_is_shown_as_text_and_never_becomes_an_element()
    {
        const string markup = "<img src=x onerror=window.__xss=1>";
        const string scriptMarkup = "<script>window.__xss=2</script>";
        string uploadedName = $"{markup}{Guid.NewGuid():N}.txt";
        string apiName = $"{scriptMarkup}{markup}{Guid.NewGuid():N}.txt";
        using var client = Server.CreateClient();
        using (var form = new MultipartFormDataContent
        {
            { new StringContent("user_data"), "purpose" },
            { new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { ["note"] = markup, ["script"] = scriptMarkup })), "metadata" },
            { new ByteArrayContent("x"u8.ToArray()), "file", apiName },
        })
        {
            using var created = await client.PostAsync("/v1/files", form);
            Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        }
        Assert.Equal(apiName, (await FindFileAsync(apiName)).GetProperty("filename").GetString()); // kept as sent

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        // Uploaded through the console: its name is in the progress line and the list.
        await console.Page.GetByLabel("choose files").SetInputFilesAsync(new FilePayload { Name = uploadedName, MimeType = "text/plain", Buffer = "y"u8.ToArray() });
        var list = console.Page.GetByRole(AriaRole.Region, new() { Name = "File list" });
        await Expect(list.GetByRole(AriaRole.Link, new() { Name = uploadedName, Exact = true })).ToBeVisibleAsync();
        await Expect(console.Page.GetByText($"{uploadedName}: ")).ToContainTextAsync("(100%)");
        await Expect(list.GetByRole(AriaRole.Link, new() { Name = apiName, Exact = true })).ToBeVisibleAsync();
        await AssertNoMarkupRanAsync(console);

        // The file's page: its name as the heading, its metadata values as cells, each the literal text.
        await list.GetByRole(AriaRole.Link, new() { Name = apiName, Exact = true }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync(apiName);
        var metadata = console.Page.GetByRole(AriaRole.Region, new() { Name = "Metadata" });
        await Expect(metadata.GetByRole(AriaRole.Cell, new() { Name = markup, Exact = true })).ToBeVisibleAsync();
        await Expect(metadata.GetByRole(AriaRole.Cell, new() { Name = scriptMarkup, Exact = true })).ToBeVisibleAsync();
        await console.ScreenshotAsync("17-markup-as-text");
        await AssertNoMarkupRanAsync(console);

        // An error whose message holds the markup (the API names the id it did not find) is shown as that text.
        using var missing = await client.GetAsync($"/v1/files/{Uri.EscapeDataString(markup)}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        string message = JsonDocument.Parse(await missing.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString()!;
        Assert.Contains(markup, message, StringComparison.Ordinal);
        await console.Page.GotoAsync(Server.ConsoleAddress + "#/files/" + Uri.EscapeDataString(markup));
        await Expect(console.Page.Locator("#alert")).ToContainTextAsync(message);
        await AssertNoMarkupRanAsync(console);
        Assert.Empty(console.ScriptErrors);
    }

    /// <summary>
    /// No element came from markup in the data: no image, no script but the console's own, no event handler attribute;
    /// and no handler ran (checked after a moment, so that an image's failed load would have fired).
    /// </summary>
    private static async Task AssertNoMarkupRanAsync(ConsolePage console)
    {
        await console.Page.WaitForTimeoutAsync(300);
        Assert.Equal(0, await console.Page.EvaluateAsync<int>("() => document.querySelectorAll('img, iframe, object, embed, [onerror], [onload]').length"));
        Assert.Equal(["console.js"], await console.Page.EvaluateAsync<string[]>("() => [...document.scripts].map(s => s.getAttribute('src'))"));
        Assert.True(await console.Page.EvaluateAsync<bool>("() => window.__xss === undefined"));
    }

    [Fact]
    public async Task The_providers_page_of_a_workspace_key_shows_capabilities_and_no_upstream_outcomes()
    {
        using var client = Server.CreateClient();
        using var answer = await client.PostAsync("/v1/chat/completions", JsonContent("""{"model":"mock/demo","messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key);
        await console.Page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Providers" }).ClickAsync();

        var mock = console.Page.GetByRole(AriaRole.Region, new() { Name = "Provider mock", Exact = true });
        await Expect(mock.GetByText("embeddings", new() { Exact = true })).ToBeVisibleAsync(); // a capability
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "Provider local", Exact = true })).ToBeVisibleAsync();
        // Outcomes hold every workspace's calls: the operator's alone, neither shown nor asked for here.
        await Expect(mock.GetByRole(AriaRole.Table)).ToHaveCountAsync(0);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Recent upstream outcomes" })).ToHaveCountAsync(0);
        Assert.DoesNotContain(console.RequestedUrls, url => url.Contains("outcomes", StringComparison.Ordinal));
        await console.ScreenshotAsync("10-providers");
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task The_admin_providers_page_shows_every_provider_with_its_recent_upstream_outcomes()
    {
        using var client = Server.CreateClient();
        using var answer = await client.PostAsync("/v1/chat/completions", JsonContent("""{"model":"mock/demo","messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.AdminKey, admin: true);
        await console.Page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Providers" }).ClickAsync();

        var mock = console.Page.GetByRole(AriaRole.Region, new() { Name = "Provider mock", Exact = true });
        await Expect(mock).ToContainTextAsync("chat.completions");
        await Expect(mock.GetByRole(AriaRole.Cell, new() { Name = "ok", Exact = true }).First).ToBeVisibleAsync();
        await Expect(mock.GetByRole(AriaRole.Cell, new() { Name = "200", Exact = true }).First).ToBeVisibleAsync();
        await Expect(mock.GetByText("embeddings", new() { Exact = true })).ToBeVisibleAsync(); // a capability
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "Provider local", Exact = true })).ToBeVisibleAsync();
        await Expect(console.Page.GetByRole(AriaRole.Region, new() { Name = "Provider slowmock", Exact = true })).ToBeVisibleAsync();
        Assert.Contains(console.RequestedUrls, url => url.EndsWith("/admin/providers/mock/outcomes", StringComparison.Ordinal));
        await console.ScreenshotAsync("10-admin-providers");
        Assert.Empty(console.ScriptErrors);
    }

    [Fact]
    public async Task The_admin_creates_a_workspace_and_a_key_sees_its_secret_once_and_revokes_it()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.AdminKey, admin: true);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Workspaces", Exact = true }).First).ToBeVisibleAsync();
        await console.ScreenshotAsync("11-workspaces");

        string workspaceName = $"console-ws-{Guid.NewGuid():N}"[..20];
        await console.Page.GetByLabel("Name", new() { Exact = true }).FillAsync(workspaceName);
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Create workspace" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = $"Workspace {workspaceName}" })).ToBeVisibleAsync();

        await console.Page.GetByLabel("Key name").FillAsync("console-key");
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var secretOutput = console.Page.GetByRole(AriaRole.Status, new() { Name = "New key secret" });
        await Expect(secretOutput).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^sk-wh-[0-9A-Za-z]{40}$"));
        string secret = (await secretOutput.TextContentAsync())!;
        await Expect(console.Page.GetByRole(AriaRole.Row).Filter(new() { HasText = "console-key" })).ToBeVisibleAsync();
        await console.ScreenshotAsync("12-workspace-key-created");

        // The key works.
        using (var withKey = Server.CreateClient(secret))
        {
            Assert.Equal(HttpStatusCode.OK, (await withKey.GetAsync("/v1/files")).StatusCode);
        }

        // Shown once: gone when dismissed, and not shown again when the page is loaded again.
        await console.Page.GetByRole(AriaRole.Button, new() { Name = "I have saved it" }).ClickAsync();
        await Expect(secretOutput).ToHaveCountAsync(0);
        await console.Page.ReloadAsync();
        await Expect(console.Page.GetByRole(AriaRole.Row).Filter(new() { HasText = "console-key" })).ToBeVisibleAsync();
        Assert.DoesNotContain(secret, await console.Page.ContentAsync(), StringComparison.Ordinal);

        await console.Page.GetByRole(AriaRole.Button, new() { Name = "Revoke console-key" }).ClickAsync();
        await Expect(console.Page.GetByRole(AriaRole.Row).Filter(new() { HasText = "console-key" })).ToHaveCountAsync(0);
        await console.ScreenshotAsync("13-workspace-key-revoked");
        Assert.Empty(console.ScriptErrors);

        // The revoked key is refused, by the API and by the console.
        using (var withKey = Server.CreateClient(secret))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/v1/files")).StatusCode);
        }
        await using var user = await fixture.OpenAsync();
        await user.SignInAsync(secret);
        await Expect(user.Page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Invalid key" })).ToBeVisibleAsync();
        await user.ScreenshotAsync("14-sign-in-revoked-key");
    }

    [Fact]
    public async Task A_key_revoked_while_signed_in_returns_the_console_to_sign_in_saying_invalid_key()
    {
        string secret = await CreateKeyAsync("short-lived");
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(secret);
        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Files", Exact = true }).First).ToBeVisibleAsync();

        await RevokeAsync(secret);
        await console.Page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Batches" }).ClickAsync();

        await Expect(console.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await Expect(console.Page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Invalid key" })).ToBeVisibleAsync();
        Assert.Null(await console.Page.EvaluateAsync<string?>("() => sessionStorage.getItem('wharf.console.key')"));
    }

    [Fact]
    public async Task The_admin_key_signed_in_as_a_workspace_key_is_invalid_and_a_workspace_key_as_admin_too()
    {
        await using var console = await fixture.OpenAsync();
        await console.SignInAsync(ConsoleServer.Key, admin: true);
        await Expect(console.Page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Invalid key" })).ToBeVisibleAsync();
        await console.SignInAsync(ConsoleServer.AdminKey, admin: false);
        await Expect(console.Page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Invalid key" })).ToBeVisibleAsync();
    }

    private async Task<JsonElement> FindFileAsync(string filename)
    {
        using var client = Server.CreateClient();
        using var list = JsonDocument.Parse(await client.GetStringAsync("/v1/files?limit=1000"));
        return list.RootElement.GetProperty("data").EnumerateArray().Single(f => f.GetProperty("filename").GetString() == filename).Clone();
    }

    private static async Task<string> UploadAsync(HttpClient client, string filename, string content)
    {
        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(content)), "file", filename },
        };
        using var answer = await client.PostAsync("/v1/files", form);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        return JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(HttpClient client, string input)
    {
        string fileId = await UploadAsync(client, $"batch-{Guid.NewGuid():N}.jsonl", input);
        using var created = await client.PostAsync("/v1/batches", JsonContent($$"""{"input_file_id":"{{fileId}}","endpoint":"/v1/chat/completions","completion_window":"24h"}"""));
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        return JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    }

    private async Task<string> CreateKeyAsync(string name)
    {
        using var admin = Server.CreateClient(ConsoleServer.AdminKey);
        using var workspace = await admin.PostAsync("/admin/workspaces", JsonContent($$"""{"name":"{{name}}-{{Guid.NewGuid():N}}"}"""));
        string workspaceId = JsonDocument.Parse(await workspace.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        using var key = await admin.PostAsync($"/admin/workspaces/{workspaceId}/keys", JsonContent($$"""{"name":"{{name}}"}"""));
        var created = JsonDocument.Parse(await key.Content.ReadAsStringAsync()).RootElement;
        _keyIds[created.GetProperty("key").GetString()!] = created.GetProperty("id").GetString()!;
        return created.GetProperty("key").GetString()!;
    }

    private async Task RevokeAsync(string secret)
    {
        using var admin = Server.CreateClient(ConsoleServer.AdminKey);
        using var revoked = await admin.DeleteAsync($"/admin/keys/{_keyIds[secret]}");
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
    }

    private readonly Dictionary<string, string> _keyIds = [];

    private static StringContent JsonContent(string json) => new(json, new MediaTypeHeaderValue("application/json"));
}
