using System.Text;
using System.Text.Json;
using Wharf.Cli.Tests.Infrastructure;

namespace Wharf.Cli.Tests;

/// <summary><c>wharf batches</c> on the <c>mock</c> provider: created with <c>--wait</c>, followed to the end, results downloaded.</summary>
[Collection(CliCollection.Name)]
public sealed class BatchTests(CliServerFixture fixture)
{
    private const int Lines = 40;

    [Fact]
    public async Task A_batch_created_with_wait_is_followed_to_completion_and_its_results_download()
    {
        string input = Path.Combine(TestFiles.Directory, "requests-" + Guid.NewGuid().ToString("N") + ".jsonl");
        var lines = new StringBuilder();
        for (int i = 0; i < Lines; i++)
        {
            lines.Append($$$"""{"custom_id":"req-{{{i}}}","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"line {{{i}}}"}]}}""").Append('\n');
        }
        await File.WriteAllTextAsync(input, lines.ToString());
        using var cli = fixture.Cli();

        var created = await cli.RunAsync(
            "batches", "create", input, "--endpoint", "/v1/chat/completions", "--model", "cli-test-model", "--metadata", "run=cli", "--wait", "--json");

        Assert.True(created.ExitCode == 0, created.ToString());
        var batch = JsonDocument.Parse(created.Stdout).RootElement;
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        var counts = batch.GetProperty("request_counts");
        Assert.Equal(Lines, counts.GetProperty("total").GetInt32());
        Assert.Equal(Lines, counts.GetProperty("completed").GetInt32());
        Assert.Equal("cli", batch.GetProperty("metadata").GetProperty("run").GetString());
        string id = batch.GetProperty("id").GetString()!;
        // Without a terminal the watch prints a line at once and then every second, and one at the end.
        Assert.Contains($"{id}: ", created.Stderr);
        Assert.Contains($"{id}: completed: {Lines} completed, 0 failed of {Lines}", created.Stderr);
        var input_file = await fixture.GetAsync($"/v1/files/{batch.GetProperty("input_file_id").GetString()}");
        Assert.Equal("batch", input_file.GetProperty("purpose").GetString());

        string results = Directory.CreateTempSubdirectory("wharf-cli-results-").FullName;
        var downloaded = await cli.RunAsync("batches", "results", id, "-o", results, "--json");

        Assert.True(downloaded.ExitCode == 0, downloaded.ToString());
        string output = Path.Combine(results, $"{id}_output.jsonl");
        var answers = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(Lines, answers.Count);
        Assert.Equal(Enumerable.Range(0, Lines).Select(i => $"req-{i}").Order(), answers.Select(a => a.GetProperty("custom_id").GetString()).Order());
        // --model was set in every line before the upload: the mock answers with the model it was sent.
        Assert.All(answers, a => Assert.Equal("cli-test-model", a.GetProperty("response").GetProperty("body").GetProperty("model").GetString()));

        var watched = await cli.RunAsync("batches", "watch", id, "--json");
        Assert.True(watched.ExitCode == 0, watched.ToString());
        Assert.Equal(id, JsonDocument.Parse(watched.Stdout).RootElement.GetProperty("id").GetString());

        var listed = await cli.RunAsync("batches", "ls", "--all", "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Contains(JsonDocument.Parse(listed.Stdout).RootElement.GetProperty("data").EnumerateArray(), b => b.GetProperty("id").GetString() == id);

        var cancel = await cli.RunAsync("batches", "cancel", id);
        Assert.Equal(1, cancel.ExitCode);
        Assert.StartsWith("error: ", cancel.Stderr);
        Directory.Delete(results, recursive: true);
        File.Delete(input);
    }

    [Fact]
    public async Task A_batch_that_fails_ends_the_wait_with_its_error_and_a_distinct_exit_code()
    {
        string input = Path.Combine(TestFiles.Directory, "bad-" + Guid.NewGuid().ToString("N") + ".jsonl");
        await File.WriteAllTextAsync(input, """{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}""" + "\n");
        using var cli = fixture.Cli();

        var created = await cli.RunAsync("batches", "create", input, "--endpoint", "/v1/chat/completions", "--wait");

        Assert.Equal(3, created.ExitCode);
        Assert.Contains("ended failed", created.Stderr);
        Assert.Contains("(line 1)", created.Stderr);
        Assert.Contains("failed", created.Stdout);
        File.Delete(input);
    }
}
