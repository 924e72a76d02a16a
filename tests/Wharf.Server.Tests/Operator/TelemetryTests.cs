using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Server.Tests.Models;
using Wharf.Server.Tests.Webhooks;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Operator;

/// <summary>
/// A server with JSON logs (and no OTLP endpoint: no traces), an OpenAI simulator (<c>sim</c>, and <c>down</c>: a port nothing listens on, then
/// <c>sim</c>, for a fallback), the <c>mock</c> provider for batches, and a webhook receiver on loopback. Each
/// test uses its own providers or routes, so that the series it checks count only its own work.
/// </summary>
public sealed class TelemetryFixture : IAsyncLifetime
{
    public const string SimKey = "sk-sim-telemetry-4f3e2d1c0b9a88776655";

    public OpenAISimulator Sim { get; private set; } = null!;

    public WebhookReceiver Receiver { get; private set; } = null!;

    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Sim = await OpenAISimulator.StartAsync(SimKey);
        Receiver = await WebhookReceiver.StartAsync();
        Server = await WharfServer.StartAsync(
        [
            "--Wharf:Logging:Json=true",
            .. Provider("sim", Sim.BaseUrl),
            .. Provider("logged", Sim.BaseUrl),
            .. Provider("down", RefusedPort.Url("/v1")),
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Routing:Models:fallback-model:0=down",
            "--Wharf:Routing:Models:fallback-model:1=sim",
            "--Wharf:Routing:RetryBaseDelayMilliseconds=1",
            "--Wharf:Routing:RetryMaxDelayMilliseconds=2",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:ChunkFlushMilliseconds=100",
            "--Wharf:Webhooks:FirstRetrySeconds=1",
            "--Wharf:Metrics:WorkspaceRefreshSeconds=1",
        ]);
    }

    private static string[] Provider(string id, Uri baseUrl) =>
        [$"--Wharf:Providers:{id}:Type=openai", $"--Wharf:Providers:{id}:BaseUrl={baseUrl}", $"--Wharf:Providers:{id}:ApiKey={SimKey}"];

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Receiver.DisposeAsync();
        await Sim.DisposeAsync();
    }
}

/// <summary><c>GET /metrics</c> and JSON logs through the real server.</summary>
public sealed partial class TelemetryTests(TelemetryFixture fixture) : IClassFixture<TelemetryFixture>
{
    private WharfServer Server => fixture.Server;

    [Fact]
    public async Task Metrics_take_the_admin_key_and_no_other()
    {
        using var anonymous = Server.CreateClient(key: null);
        using var workspace = Server.CreateClient();
        using var admin = Server.CreateClient(WharfServer.AdminKey);

        using (var response = await anonymous.GetAsync("/metrics"))
        {
            await Wire.AssertErrorAsync(response, 401);
        }
        using (var response = await workspace.GetAsync("/metrics"))
        {
            await Wire.AssertErrorAsync(response, 401);
        }
        using (var response = await admin.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("# TYPE ", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task After_an_upload_a_retried_and_a_fallen_back_request_a_batch_and_a_webhook_the_series_hold_what_happened()
    {
        var (_, _, key, client) = await WebhookKit.NewTenantAsync(Server, "metered", fixture.Receiver.Url("/hooks/metered"));
        using var _ = client;
        // The framework's HTTP series are not per workspace: the other tests' requests are taken out.
        var before = await ScrapeAsync();

        // An upload held open: counted in flight while its body streams, and not after.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var form = new MultipartFormDataContent();
        var file = new StreamContent(new GatedStream(new byte[256 * 1024], HeldAfter: 128 * 1024, gate.Task));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(new StringContent("assistants"), "purpose");
        form.Add(file, "file", "held.txt");
        var upload = client.PostAsync("/v1/files", form);
        await WaitForAsync(async () => Sum(await ScrapeAsync(), "wharf_uploads_in_flight", ("wharf_upload_kind", "file")) == 1);
        gate.SetResult();
        using (var uploaded = await upload)
        {
            Assert.Equal(HttpStatusCode.OK, uploaded.StatusCode);
        }

        // One 503, then an answer: one retry on sim.
        fixture.Sim.Enqueue(Fault.Status(503));
        using (var retried = await client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("""{"model":"sim/retried-model","messages":[{"role":"user","content":"hi"}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
            Assert.Equal("2", retried.Headers.GetValues("x-wharf-attempts").Single());
        }
        // down refuses three times (a call and two retries), then sim answers: one fallback.
        using (var fellBack = await client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("""{"model":"fallback-model","messages":[{"role":"user","content":"hi"}]}""")))
        {
            Assert.Equal(HttpStatusCode.OK, fellBack.StatusCode);
            Assert.Equal("sim", fellBack.Headers.GetValues("x-wharf-provider").Single());
        }

        // A batch of three lines on mock; its webhook is refused once, then taken.
        fixture.Receiver.AnswerInTurn(500);
        string inputId = (await Wire.UploadAsync(client, "batch", BatchKit.Lines(3, "mock/metered-model"), "input.jsonl")).Id();
        string batchId = (await BatchKit.CreateAsync(client, inputId)).Id();
        Assert.Equal("completed", (await BatchKit.WaitForEndAsync(client, batchId)).Status());
        await WebhookKit.WaitForEventAboutAsync(fixture.Receiver, batchId, count: 2);

        List<Sample> samples = [];
        await WaitForAsync(async () =>
        {
            samples = await ScrapeAsync();
            return Sum(samples, "wharf_webhook_deliveries_total", ("wharf_webhook_outcome", "delivered")) == 1;
        });

        Assert.Equal(0, Sum(samples, "wharf_uploads_in_flight", ("wharf_upload_kind", "file")));
        // The held upload and the batch's input file.
        (string, string)[] uploads = [("http_route", "/v1/files/"), ("http_request_method", "POST"), ("http_response_status_code", "200")];
        Assert.Equal(2, Sum(samples, "http_server_request_duration_seconds_count", uploads) - Sum(before, "http_server_request_duration_seconds_count", uploads));
        (string, string)[] answered = [("http_route", "/v1/chat/completions"), ("http_response_status_code", "200")];
        Assert.Equal(2, Sum(samples, "http_server_request_duration_seconds_count", answered) - Sum(before, "http_server_request_duration_seconds_count", answered));

        Assert.Equal(1, Sum(samples, "wharf_routing_retries_total", ("wharf_provider_id", "sim"), ("wharf_endpoint", "chat.completions")));
        Assert.Equal(2, Sum(samples, "wharf_routing_retries_total", ("wharf_provider_id", "down")));
        Assert.Equal(1, Sum(samples, "wharf_routing_fallbacks_total", ("wharf_provider_id", "sim"), ("wharf_endpoint", "chat.completions")));
        Assert.Equal(1, Sum(samples, "wharf_provider_calls_total", ("wharf_provider_id", "sim"), ("wharf_provider_operation", "chat.completions"), ("http_response_status_code", "503")));
        Assert.Equal(2, Sum(samples, "wharf_provider_calls_total", ("wharf_provider_id", "sim"), ("wharf_provider_outcome", "ok")));
        Assert.Equal(3, Sum(samples, "wharf_provider_calls_total", ("wharf_provider_id", "down")));
        Assert.Equal(3, Sum(samples, "wharf_provider_call_duration_seconds_count", ("wharf_provider_id", "sim")));
        Assert.True(Sum(samples, "wharf_provider_call_duration_seconds_bucket", ("wharf_provider_id", "sim"), ("le", "+Inf")) == 3);
        Assert.Equal(3, Sum(samples, "wharf_provider_calls_total", ("wharf_provider_id", "mock"), ("wharf_provider_outcome", "ok")));

        Assert.Equal(1, Sum(samples, "wharf_batches_ended_total", ("wharf_batch_status", "completed")));
        Assert.Equal(3, Sum(samples, "wharf_batch_lines_total", ("wharf_batch_line_state", "completed")));
        Assert.Equal(0, Sum(samples, "wharf_batch_lines_total", ("wharf_batch_line_state", "failed")));
        Assert.Equal(1, Sum(samples, "wharf_webhook_deliveries_total", ("wharf_webhook_outcome", "retry")));

        // No label value names a file, batch, upload or key, or holds a secret.
        foreach (var sample in samples)
        {
            foreach (var (label, value) in sample.Labels)
            {
                Assert.DoesNotMatch("^(file-|batch_|upload_|part_|key_|sk-|evt_)", value);
                Assert.NotEqual(key, value);
                Assert.DoesNotContain(fixture.Receiver.BaseAddress.Authority, value);
            }
        }
        string exposition = await ScrapeTextAsync();
        Assert.DoesNotContain(key, exposition);
        Assert.DoesNotContain(WharfServer.Key, exposition);
        Assert.DoesNotContain(TelemetryFixture.SimKey, exposition);
    }

    [Fact]
    public async Task A_workspaces_stored_bytes_and_files_are_gauged_by_its_id()
    {
        using var admin = new Admin(Server);
        var (workspaceId, client) = await admin.NewTenantAsync("gauged");
        using var _ = client;
        await Wire.UploadAsync(client, "assistants", "abc", "a.txt");
        string second = (await Wire.UploadAsync(client, "assistants", "hello!", "b.txt")).Id();
        await WaitForAsync(async () =>
        {
            var samples = await ScrapeAsync();
            return Sum(samples, "wharf_workspace_stored_bytes", ("wharf_workspace_id", workspaceId)) == 9
                && Sum(samples, "wharf_workspace_files", ("wharf_workspace_id", workspaceId)) == 2;
        });
        using (var deleted = await client.DeleteAsync($"/v1/files/{second}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        await WaitForAsync(async () =>
        {
            var samples = await ScrapeAsync();
            return Sum(samples, "wharf_workspace_stored_bytes", ("wharf_workspace_id", workspaceId)) == 3
                && Sum(samples, "wharf_workspace_files", ("wharf_workspace_id", workspaceId)) == 1;
        });
    }

    [Fact]
    public async Task Json_logs_are_one_object_a_line_and_a_requests_lines_carry_its_request_id_and_no_secret_or_content()
    {
        using var client = Server.CreateClient();
        const string content = "a-message-body-that-must-not-be-logged";
        fixture.Sim.Enqueue(Fault.Status(503));
        using var response = await client.PostAsync("/v1/chat/completions",
            UpstreamsFixture.Json($$"""{"model":"logged/logged-model","messages":[{"role":"user","content":"{{content}}"}]}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string requestId = response.Headers.GetValues("x-request-id").Single();

        List<JsonElement> lines = [];
        await WaitForAsync(() =>
        {
            lines = [.. Server.Output.Split('\n').Where(l => l.Length > 0).Select(ParseLine)];
            return Task.FromResult(lines.Any(l => l.GetProperty("Message").GetString()!.Contains("logged", StringComparison.Ordinal)));
        });
        var aboutRequest = lines.Where(l => l.GetProperty("Message").GetString()!.Contains("Provider logged", StringComparison.Ordinal)
            || l.GetProperty("Message").GetString()!.Contains("Upstream logged", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, aboutRequest.Count); // the failed call, and the retry it leads to
        foreach (var line in aboutRequest)
        {
            var scopes = line.GetProperty("Scopes").EnumerateArray();
            Assert.Contains(scopes, s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("request_id", out var id) && id.GetString() == requestId);
        }
        Assert.DoesNotContain(content, Server.Output);
        Assert.DoesNotContain(TelemetryFixture.SimKey, Server.Output);
        Assert.DoesNotContain(WharfServer.Key, Server.Output);
        Assert.DoesNotContain(WharfServer.AdminKey, Server.Output);
    }

    [Fact]
    public async Task Metrics_are_public_with_the_option()
    {
        await using var server = await WharfServer.StartAsync("--Wharf:Metrics:Public=true");
        using var anonymous = server.CreateClient(key: null);
        using var response = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("target_info", await response.Content.ReadAsStringAsync());
    }

    private static JsonElement ParseLine(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"A log line is not JSON ({e.Message}): {line}");
        }
    }

    private async Task<string> ScrapeTextAsync()
    {
        using var admin = Server.CreateClient(WharfServer.AdminKey);
        return await admin.GetStringAsync("/metrics");
    }

    private async Task<List<Sample>> ScrapeAsync() => Sample.Parse(await ScrapeTextAsync());

    private static double Sum(List<Sample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out string? v) && v == l.Value)).Sum(s => s.Value);

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within 30 s");
            await Task.Delay(50);
        }
    }

    /// <summary>One line of the Prometheus text format: a name, its labels and a value.</summary>
    private sealed partial record Sample(string Name, Dictionary<string, string> Labels, double Value)
    {
        public static List<Sample> Parse(string exposition)
        {
            var samples = new List<Sample>();
            foreach (string line in exposition.Split('\n'))
            {
                if (line.Length == 0 || line[0] == '#')
                {
                    continue;
                }
                var match = Line().Match(line);
                Assert.True(match.Success, "not a sample line: " + line);
                var labels = new Dictionary<string, string>();
                foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
                {
                    labels[label.Groups[1].Value] = label.Groups[2].Value;
                }
                double value = match.Groups["value"].Value switch
                {
                    "+Inf" => double.PositiveInfinity,
                    "-Inf" => double.NegativeInfinity,
                    var v => double.Parse(v, CultureInfo.InvariantCulture),
                };
                samples.Add(new Sample(match.Groups["name"].Value, labels, value));
            }
            return samples;
        }

        [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$")]
        private static partial Regex Line();

        [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)""")]
        private static partial Regex LabelPair();
    }

    /// <summary>
    /// A body that gives its first <paramref name="HeldAfter"/> bytes at once (more than a client buffers, so they are
    /// sent), and the rest only once <paramref name="open"/> completes.
    /// </summary>
    private sealed class GatedStream(byte[] bytes, int HeldAfter, Task open) : Stream
    {
        private int _position;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= HeldAfter)
            {
                await open.WaitAsync(cancellationToken);
            }
            int count = Math.Min(buffer.Length, (_position < HeldAfter ? HeldAfter : bytes.Length) - _position);
            bytes.AsMemory(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
