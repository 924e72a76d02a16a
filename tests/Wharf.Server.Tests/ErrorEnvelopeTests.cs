using System.Net.Http.Headers;
using System.Text;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>
/// The envelope on the answers the server writes before (or beside) Wharf's handlers: Kestrel's own refusals of a
/// request it cannot parse or that is over its limits, and the file results' 416.
/// </summary>
public sealed class ErrorEnvelopeTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    public static TheoryData<string, string, int, string> Refusals => new()
    {
        { "malformed request line", "GARBAGE\r\n\r\n", 400, "malformed_request" },
        { "malformed header", "GET /healthz HTTP/1.1\r\nHost: wharf\r\nno colon here\r\n\r\n", 400, "malformed_request" },
        { "request line over 64 KiB", "GET /" + new string('a', 70_000) + " HTTP/1.1\r\nHost: wharf\r\n\r\n", 414, "request_line_too_long" },
        { "headers over 32 KiB", "GET /healthz HTTP/1.1\r\nHost: wharf\r\nX-Big: " + new string('a', 40_000) + "\r\n\r\n", 431, "request_headers_too_large" },
        { "more than 100 headers", "GET /healthz HTTP/1.1\r\nHost: wharf\r\n" + string.Concat(Enumerable.Range(0, 120).Select(i => $"X-H{i}: v\r\n")) + "\r\n", 431, "request_headers_too_large" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Requests_the_server_refuses_while_parsing_get_the_envelope(string what, string request, int status, string code)
    {
        string answer = await RawHttp.SendAsync(fixture.Server, Encoding.ASCII.GetBytes(request));
        var error = RawHttp.AssertEnvelope(answer, status, code);
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()), what);
    }

    [Fact]
    public async Task A_refusal_after_answered_requests_on_the_same_connection_gets_the_envelope_and_they_are_untouched()
    {
        string answer = await RawHttp.SendAsync(fixture.Server, Encoding.ASCII.GetBytes(
            "GET /healthz HTTP/1.1\r\nHost: wharf\r\n\r\n"
            + "GET /v1/nothing-here HTTP/1.1\r\nHost: wharf\r\n\r\n"
            + "GET /healthz HTTP/1.1\r\nHost: wharf\r\nbroken header\r\n\r\n"));
        string[] answers = answer.Split("HTTP/1.1 ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, answers.Length);
        Assert.StartsWith("200 OK", answers[0]);
        Assert.Contains("{\"status\":\"ok\"}", answers[0]);
        Assert.StartsWith("404 ", answers[1]);
        Assert.Contains("\"code\":\"unknown_url\"", answers[1]);
        RawHttp.AssertEnvelope("HTTP/1.1 " + answers[2], 400, "malformed_request");
    }

    [Fact]
    public async Task An_unsatisfiable_range_gets_the_envelope_and_keeps_content_range()
    {
        using var client = fixture.Server.CreateClient();
        var file = await Wire.UploadAsync(client, text: "twenty bytes of text");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{file.GetProperty("id").GetString()}/content");
        request.Headers.Range = new RangeHeaderValue(100, 200);
        using var response = await client.SendAsync(request);
        var error = await Wire.AssertErrorAsync(response, 416, "range", "range_not_satisfiable");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("bytes */20", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.Null(response.Content.Headers.ContentDisposition); // the answer is not the file
    }
}
