using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>A server that lets silent clients go after a second, and cuts a request body slower than 20 kB/s.</summary>
public sealed class ShortTimeoutsServerFixture : ServerFixture
{
    protected override string[] Args =>
    [
        "--Wharf:Server:KeepAliveTimeoutSeconds=1",
        "--Wharf:Server:RequestHeadersTimeoutSeconds=1",
        "--Wharf:Server:MinRequestBodyBytesPerSecond=20000",
        "--Wharf:Server:MinRequestBodyGraceSeconds=2",
    ];
}

/// <summary>Connections are bounded by the file-descriptor limit, and silent or stalled clients are let go.</summary>
public sealed class ServerLimitsTests(ShortTimeoutsServerFixture fixture) : IClassFixture<ShortTimeoutsServerFixture>
{
    /// <summary>512 descriptors: 384 kept for the runtime and the store, two per connection, so 64 connections.</summary>
    private const int DescriptorLimit = 512;
    private const int ConnectionsThatFit = (DescriptorLimit - 384) / 2;

    [Fact]
    public async Task More_idle_connections_than_descriptors_are_refused_and_the_server_lives_on()
    {
        await using var server = await WharfServer.StartThroughAsync(
            ["prlimit", $"--nofile={DescriptorLimit}:{DescriptorLimit}"], "--Wharf:Server:RefusedConnectionsLogSeconds=1");
        Assert.Contains($"may open only {DescriptorLimit} files", server.Output);

        var endpoint = new IPEndPoint(IPAddress.Loopback, server.BaseAddress.Port);
        var sockets = new List<Socket>();
        try
        {
            // More connections than the process has descriptors left: before the limits, accept failed with EMFILE,
            // the listener stopped and the runtime aborted ("Out of memory.").
            for (int i = 0; i < 400; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(socket);
                await socket.ConnectAsync(endpoint);
            }

            // Those past the limit are accepted and closed at once; the others are held (and idle).
            int closed = 0;
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                closed = sockets.Count(ClosedByServer);
                if (closed >= sockets.Count - ConnectionsThatFit)
                {
                    break;
                }
                await Task.Delay(100);
            }
            Assert.True(closed >= sockets.Count - ConnectionsThatFit, $"{closed} of {sockets.Count} connections were closed by the server");
            Assert.True(server.IsRunning, "the server exited:\n" + server.Output);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        // Once they are gone, the server serves again.
        using var client = server.CreateClient();
        var deadlineForService = Stopwatch.StartNew();
        HttpResponseMessage? answer = null;
        while (answer is null)
        {
            try
            {
                answer = await client.GetAsync("/v1/files?limit=1");
            }
            catch (HttpRequestException) when (deadlineForService.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(100); // a slot is freed as Kestrel sees each close
            }
        }
        using (answer)
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
        Assert.True(server.IsRunning);
        Assert.DoesNotContain("Out of memory", server.Output);

        // The refused connections are counted in a line per second, not logged one by one.
        var refusals = new System.Text.RegularExpressions.Regex(@"(\d+) connection\(s\) refused in the last 1 s");
        int counted = 0;
        for (int attempt = 0; attempt < 30 && counted < sockets.Count - ConnectionsThatFit; attempt++)
        {
            await Task.Delay(100);
            counted = refusals.Matches(server.Output).Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.True(counted >= sockets.Count - ConnectionsThatFit, $"{counted} refusals logged");
        Assert.DoesNotContain("rejected because the maximum number of concurrent connections", server.Output);
    }

    [Fact]
    public async Task A_silent_connection_is_closed_after_the_keep_alive_timeout()
    {
        using var socket = await ConnectAsync();
        var waited = Stopwatch.StartNew();
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token); // Kestrel's default kept it 130 s
        Assert.Equal(0, read);
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(5), $"closed after {waited.Elapsed}");
    }

    [Fact]
    public async Task Headers_that_stop_arriving_get_a_408_envelope()
    {
        using var socket = await ConnectAsync();
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: wharf\r\n"));
        var waited = Stopwatch.StartNew();
        var answer = await RawHttp.ReadToEndAsync(socket, TimeSpan.FromSeconds(10)); // Kestrel's default waits 30 s
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(5), $"answered after {waited.Elapsed}");
        RawHttp.AssertEnvelope(answer, 408, "request_timeout");
    }

    [Fact]
    public async Task A_request_body_that_stalls_is_cut_within_the_grace_period()
    {
        using var socket = await ConnectAsync();
        const string boundary = "stall";
        var head = new StringBuilder()
            .Append("POST /v1/files HTTP/1.1\r\nHost: wharf\r\n")
            .Append("Authorization: Bearer ").Append(WharfServer.Key).Append("\r\n")
            .Append("Content-Type: multipart/form-data; boundary=").Append(boundary).Append("\r\n")
            .Append("Content-Length: 10000000\r\n\r\n")
            .Append("--").Append(boundary).Append("\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n")
            .Append("--").Append(boundary).Append("\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n")
            .Append("Content-Type: application/octet-stream\r\n\r\n");
        await socket.SendAsync(Encoding.ASCII.GetBytes(head.ToString()));
        // 16 KiB at once, then nothing: at Kestrel's default rate (240 B/s, averaged) that burst kept the body
        // alive for over a minute; at 20 kB/s it is cut when the 2 s grace period ends.
        await socket.SendAsync(new byte[16 * 1024]);
        var waited = Stopwatch.StartNew();
        await RawHttp.ReadToEndAsync(socket, TimeSpan.FromSeconds(15));
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(6), $"the stalled body was cut after {waited.Elapsed}");
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, fixture.Server.BaseAddress.Port));
        return socket;
    }

    /// <summary>The peer closed (end of stream or reset) and sent nothing.</summary>
    private static bool ClosedByServer(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead) && socket.Receive(new byte[1], SocketFlags.Peek) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }
}
