using System.Net;
using System.Text;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Server.Tests.Models;

namespace Wharf.Server.Tests.Operator;

/// <summary>
/// OTLP export when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set: an HTTP/protobuf receiver on loopback (the recording
/// server of the webhook tests) gets the traces and the metrics. The protobuf is not decoded: its strings (span names,
/// metric names, the service name) travel as UTF-8 bytes, and those are looked for.
/// </summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task Traces_and_metrics_reach_an_otlp_receiver()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await WharfServer.StartAsync(
            "--OTEL_EXPORTER_OTLP_ENDPOINT=" + receiver.BaseAddress.ToString().TrimEnd('/'),
            "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            "--OTEL_BSP_SCHEDULE_DELAY=100",
            "--OTEL_METRIC_EXPORT_INTERVAL=200",
            "--Wharf:Providers:mock:Type=mock");
        using var client = server.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions",
            UpstreamsFixture.Json("""{"model":"mock/otlp-model","messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(Has("/v1/traces", "provider chat.completions") && Has("/v1/metrics", "wharf.provider.calls") && Has("/v1/metrics", "http.server.request.duration")))
        {
            Assert.True(DateTime.UtcNow < deadline, "received: " + string.Join(", ", receiver.Requests.Select(r => r.Path)));
            await Task.Delay(100);
        }
        var traces = receiver.Requests.First(r => r.Path == "/v1/traces");
        Assert.Equal("POST", traces.Method);
        Assert.Equal("application/x-protobuf", traces.ContentType);
        Assert.Contains(receiver.Requests, r => r.Path == "/v1/traces" && Contains(r.Body, "wharf")); // service.name

        bool Has(string path, string text) => receiver.Requests.Any(r => r.Path == path && Contains(r.Body, text));
    }

    private static bool Contains(byte[] body, string text) => body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;
}
