using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>Requests no HTTP client would send, over a plain socket, and the answers read as text.</summary>
public static class RawHttp
{
    /// <summary>Sends <paramref name="request"/> on a new connection and reads until the server closes it.</summary>
    public static async Task<string> SendAsync(WharfServer server, byte[] request, TimeSpan? timeout = null)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, server.BaseAddress.Port);
        await socket.SendAsync(request);
        return await ReadToEndAsync(socket, timeout ?? TimeSpan.FromSeconds(10));
    }

    /// <summary>Everything the server sends until it closes the connection; fails if it has not within <paramref name="timeout"/>.</summary>
    public static async Task<string> ReadToEndAsync(Socket socket, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                if (read == 0)
                {
                    break;
                }
                received.Write(buffer, 0, read);
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the server did not close the connection within {timeout}; received:\n" + Encoding.ASCII.GetString(received.ToArray()));
        }
        catch (SocketException)
        {
            // a reset after the answer: what was received is the answer
        }
        return Encoding.UTF8.GetString(received.ToArray());
    }

    /// <summary>Asserts one HTTP answer with <paramref name="status"/> whose body is the Wharf error envelope.</summary>
    public static JsonElement AssertEnvelope(string answer, int status, string? code = null)
    {
        int headersEnd = answer.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headersEnd > 0, "not an HTTP answer:\n" + answer);
        string[] head = answer[..headersEnd].Split("\r\n");
        Assert.StartsWith($"HTTP/1.1 {status} ", head[0]);
        var headers = head.Skip(1).Select(line => line.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        Assert.StartsWith("application/json", headers["Content-Type"]);
        string body = answer[(headersEnd + 4)..];
        Assert.Equal(int.Parse(headers["Content-Length"], System.Globalization.CultureInfo.InvariantCulture), Encoding.UTF8.GetByteCount(body));
        string requestId = headers["x-request-id"];
        Assert.Matches("^req_[0-9a-f]{32}$", requestId);

        using var document = JsonDocument.Parse(body);
        var json = document.RootElement;
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(status >= 500 ? "server_error" : "invalid_request_error", error.GetProperty("type").GetString());
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }
        Assert.False(json.GetProperty("ok").GetBoolean());
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        Assert.Equal(requestId, json.GetProperty("generation_id").GetString());
        Assert.Equal(requestId, json.GetProperty("event_id").GetString());
        return error.Clone();
    }
}
