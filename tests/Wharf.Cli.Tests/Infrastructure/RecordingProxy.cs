using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Wharf.Cli.Tests.Infrastructure;

/// <summary>A request the proxy passed on: what the CLI asked and what the server answered.</summary>
public sealed partial record SeenRequest(string Method, string PathAndQuery, string? Range, string? IfRange, int Status, long ResponseBytes)
{
    public bool IsPart => IsPartRequest(Method, PathAndQuery);

    /// <summary>A part of an upload: <c>POST /v1/uploads/{id}/parts</c>.</summary>
    public static bool IsPartRequest(string method, string pathAndQuery) => method == "POST" && PartPath().IsMatch(pathAndQuery);

    [GeneratedRegex(@"^/v1/uploads/upload_[0-9a-f]+/parts$")]
    private static partial Regex PartPath();
}

/// <summary>
/// A loopback HTTP proxy between the CLI and the server that records every request, so a test sees from outside
/// what the CLI sent (which parts, which ranges). It can also cut an upload short: let some parts through to the
/// server, then hold every further part, and withhold the server's answers to the parts it let through, so the CLI
/// never learns they were accepted (as when it is killed right after the server accepted a part).
/// </summary>
public sealed class RecordingProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client;
    private readonly Uri _target;
    private readonly ConcurrentQueue<SeenRequest> _seen = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _partsStarted;
    private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RecordingProxy(Uri target)
    {
        _target = target;
        _client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        int port = FreePort();
        Address = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Address.ToString());
        _listener.Start();
        _loop = AcceptAsync();
    }

    public Uri Address { get; }

    /// <summary>Parts let through before the rest are held; null: none held.</summary>
    public int? PartsToLetThrough { get; set; }

    /// <summary>The parts let through reach the server, but their answers never reach the CLI.</summary>
    public bool WithholdPartAnswers { get; set; }

    public IReadOnlyList<SeenRequest> Seen => [.. _seen];

    public void Clear()
    {
        _seen.Clear();
        Interlocked.Exchange(ref _partsStarted, 0);
    }

    /// <summary>Stops holding: every held request is dropped (its client is gone) and new parts pass.</summary>
    public void ReleaseHeld()
    {
        PartsToLetThrough = null;
        WithholdPartAnswers = false;
        Interlocked.Exchange(ref _release, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                continue;
            }
            _ = Task.Run(() => ForwardAsync(context));
        }
    }

    private async Task ForwardAsync(HttpListenerContext context)
    {
        var request = context.Request;
        string pathAndQuery = request.Url!.PathAndQuery;
        bool isPart = SeenRequest.IsPartRequest(request.HttpMethod, pathAndQuery);
        bool withhold = false;
        if (isPart && PartsToLetThrough is { } allowed)
        {
            int number = Interlocked.Increment(ref _partsStarted);
            if (number > allowed)
            {
                // Held until released, then dropped: the CLI that sent it is gone by then.
                await _release.Task;
                context.Response.Abort();
                return;
            }
            withhold = WithholdPartAnswers;
        }
        try
        {
            using var message = new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_target, pathAndQuery));
            if (request.HasEntityBody)
            {
                message.Content = new StreamContent(request.InputStream);
                if (request.ContentLength64 > 0)
                {
                    message.Content.Headers.ContentLength = request.ContentLength64;
                }
            }
            foreach (string name in request.Headers.AllKeys.OfType<string>())
            {
                if (name is "Host" or "Content-Length" or "Transfer-Encoding" or "Connection" or "Expect" or "Keep-Alive")
                {
                    continue;
                }
                string[] values = request.Headers.GetValues(name) ?? [];
                if (!message.Headers.TryAddWithoutValidation(name, values))
                {
                    message.Content?.Headers.TryAddWithoutValidation(name, values);
                }
            }
            using var answer = await _client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, _stop.Token);
            if (withhold)
            {
                // The server has the part; the CLI never hears of it.
                _seen.Enqueue(new SeenRequest(request.HttpMethod, pathAndQuery, request.Headers["Range"], request.Headers["If-Range"], (int)answer.StatusCode, 0));
                await _release.Task;
                context.Response.Abort();
                return;
            }
            var response = context.Response;
            response.StatusCode = (int)answer.StatusCode;
            foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
            {
                if (name is "Content-Length" or "Transfer-Encoding" or "Connection" or "Keep-Alive" or "Server" or "Date")
                {
                    continue;
                }
                response.Headers[name] = string.Join(", ", values);
            }
            if (answer.Content.Headers.ContentLength is { } length)
            {
                response.ContentLength64 = length;
            }
            else
            {
                response.SendChunked = true;
            }
            await using var body = await answer.Content.ReadAsStreamAsync(_stop.Token);
            long copied = 0;
            var buffer = new byte[81920];
            int read;
            while ((read = await body.ReadAsync(buffer, _stop.Token)) > 0)
            {
                await response.OutputStream.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                copied += read;
            }
            _seen.Enqueue(new SeenRequest(request.HttpMethod, pathAndQuery, request.Headers["Range"], request.Headers["If-Range"], (int)answer.StatusCode, copied));
            response.Close();
        }
        catch (Exception)
        {
            // The CLI went away (killed) or the server did: nothing to answer.
            try
            {
                context.Response.Abort();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _release.TrySetResult();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (ObjectDisposedException)
        {
        }
        _client.Dispose();
        _stop.Dispose();
    }
}
