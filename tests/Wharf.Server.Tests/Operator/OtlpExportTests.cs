using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Server.Tests.Models;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Operator;

/// <summary>
/// Traces and OTLP export when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set: an HTTP/protobuf receiver on loopback (the
/// recording server of the webhook tests) gets the traces, the metrics and the log records, and a model request's trace reaches the
/// upstream call. The protobuf is not decoded: its strings (span names, metric names, the service name) travel as
/// UTF-8 bytes, and those are looked for.
/// </summary>
public sealed class OtlpExportTests
{
    private const string SimKey = "sk-sim-otlp-0f1e2d3c4b5a69788796a5b4";

    [Fact]
    public async Task A_model_requests_trace_reaches_the_upstream_call_and_traces_and_metrics_reach_an_otlp_receiver()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var sim = await OpenAISimulator.StartAsync(SimKey);
        await using var server = await WharfServer.StartAsync(
            "--OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.BaseAddress.ToString().TrimEnd('/'),
            "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            "--OTEL_BSP_SCHEDULE_DELAY=100",
            "--OTEL_METRIC_EXPORT_INTERVAL=200",
            "--Wharf:Providers:sim:Type=openai", $"--Wharf:Providers:sim:BaseUrl={sim.BaseUrl}", $"--Wharf:Providers:sim:ApiKey={SimKey}");
        using var client = server.CreateClient();
        string traceId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        const string clientSpan = "00f067aa0ba902b7";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = UpstreamsFixture.Json("""{"model":"sim/otlp-model","messages":[{"role":"user","content":"hi"}]}"""),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{clientSpan}-01");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // One trace, from the client's request through Wharf's spans to the upstream call.
        var upstream = Assert.Single(UpstreamsFixture.CallsFor(sim, "otlp-model"));
        var parent = Regex.Match(upstream.Header("traceparent") ?? "", "^00-([0-9a-f]{32})-([0-9a-f]{16})-01$");
        Assert.True(parent.Success, "the upstream call carries no traceparent");
        Assert.Equal(traceId, parent.Groups[1].Value);
        Assert.NotEqual(clientSpan, parent.Groups[2].Value);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(Has("/v1/traces", "provider chat.completions") && Has("/v1/traces", Convert.FromHexString(traceId))
            && Has("/v1/metrics", "wharf.provider.calls") && Has("/v1/metrics", "http.server.request.duration")
            && Has("/v1/logs", "Now listening on")))
        {
            Assert.True(DateTime.UtcNow < deadline, "received: " + string.Join(", ", receiver.Requests.Select(r => r.Path)));
            await Task.Delay(100);
        }
        var traces = receiver.Requests.First(r => r.Path == "/v1/traces");
        Assert.Equal("POST", traces.Method);
        Assert.Equal("application/x-protobuf", traces.ContentType);
        Assert.Contains(receiver.Requests, r => r.Path == "/v1/traces" && Contains(r.Body, Encoding.UTF8.GetBytes("wharf"))); // service.name
        Assert.DoesNotContain(receiver.Requests, r => Contains(r.Body, Encoding.UTF8.GetBytes(SimKey)) || Contains(r.Body, Encoding.UTF8.GetBytes(WharfServer.Key)));

        bool Has(string path, object content) =>
            receiver.Requests.Any(r => r.Path == path && Contains(r.Body, content as byte[] ?? Encoding.UTF8.GetBytes((string)content)));
    }

    private static bool Contains(byte[] body, byte[] part) => body.AsSpan().IndexOf(part) >= 0;
}
