using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>
/// A webhook endpoint on a real in-process Kestrel server on 127.0.0.1: records every request (its headers and raw
/// body) and answers as the test scripts it (statuses in turn, then <see cref="DefaultStatus"/>; or no answer at all
/// while <see cref="Hang"/> is set).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<int> _script = new();
    private readonly List<Received> _received = [];
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>One request as it arrived.</summary>
    public sealed record Received(
        string Method, string Path, string? ContentType, string? WebhookId, string? WebhookTimestamp, string? WebhookSignature, byte[] Body)
    {
        public string BodyText => Encoding.UTF8.GetString(Body);
    }

    private WebhookReceiver()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var receiver = new WebhookReceiver();
        await receiver._app.StartAsync();
        var address = receiver._app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        receiver.BaseAddress = new Uri(address);
        return receiver;
    }

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The endpoint's URL at <paramref name="path"/> (with whatever query the test adds).</summary>
    public string Url(string path = "/hooks/wharf") => new Uri(BaseAddress, path).ToString();

    /// <summary>The answer when no scripted status is left.</summary>
    public int DefaultStatus { get; set; } = 200;

    /// <summary>While set, a request gets no answer until the sender gives up on it.</summary>
    public bool Hang { get; set; }

    /// <summary>Runs on each request before it is answered (e.g. to read what Wharf shows at that moment).</summary>
    public Func<Received, Task>? OnReceipt { get; set; }

    /// <summary>Statuses for the next requests, in turn.</summary>
    public void AnswerInTurn(params int[] statuses)
    {
        foreach (int status in statuses)
        {
            _script.Enqueue(status);
        }
    }

    public IReadOnlyList<Received> Requests
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    /// <summary>Waits (at most 30 s) until <paramref name="count"/> requests have arrived; returns them.</summary>
    public async Task<IReadOnlyList<Received>> WaitForAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Requests.Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"The receiver got {Requests.Count} requests, not {count}.");
            await Task.Delay(10);
        }
        return Requests;
    }

    /// <summary>
    /// Whether a request carries a valid Standard Webhooks signature for <paramref name="secret"/>, checked here apart
    /// from Wharf's own code: HMAC-SHA256 keyed with the base64 after <c>whsec_</c>, over
    /// <c>{webhook-id}.{webhook-timestamp}.{raw body}</c>, compared with each <c>v1,</c> entry of the header.
    /// </summary>
    public static bool SignatureIsValid(Received request, string secret)
    {
        if (request.WebhookId is null || request.WebhookTimestamp is null || request.WebhookSignature is null || !secret.StartsWith("whsec_", StringComparison.Ordinal))
        {
            return false;
        }
        byte[] key = Convert.FromBase64String(secret[6..]);
        byte[] signed = [.. Encoding.UTF8.GetBytes(request.WebhookId + "." + request.WebhookTimestamp + "."), .. request.Body];
        byte[] expected = HMACSHA256.HashData(key, signed);
        foreach (string entry in request.WebhookSignature.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!entry.StartsWith("v1,", StringComparison.Ordinal))
            {
                continue;
            }
            byte[] given = new byte[64];
            if (Convert.TryFromBase64String(entry[3..], given, out int length)
                && CryptographicOperations.FixedTimeEquals(expected, given.AsSpan(0, length)))
            {
                return true;
            }
        }
        return false;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var request = new Received(
            context.Request.Method, context.Request.Path + context.Request.QueryString, context.Request.ContentType,
            context.Request.Headers["webhook-id"].FirstOrDefault(), context.Request.Headers["webhook-timestamp"].FirstOrDefault(),
            context.Request.Headers["webhook-signature"].FirstOrDefault(), body.ToArray());
        if (OnReceipt is { } onReceipt)
        {
            await onReceipt(request);
        }
        lock (_received)
        {
            _received.Add(request);
        }
        if (Hang)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            try
            {
                await Task.Delay(Timeout.Infinite, both.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        int status = _script.TryDequeue(out int scripted) ? scripted : DefaultStatus;
        context.Response.StatusCode = status;
        if (status is >= 300 and < 400)
        {
            context.Response.Headers.Location = "/redirected";
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }
}
