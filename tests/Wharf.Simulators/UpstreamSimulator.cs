using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Wharf.Simulators;

/// <summary>What a request asks of the simulator, once its path is understood.</summary>
public enum SimulatedOperation
{
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    FileUpload,
    FileList,
    FileGet,
    FileDelete,
    FileContent,
    BatchCreate,
    BatchList,
    BatchGet,
    BatchCancel,

    /// <summary>A batch's results read from the batch itself (Anthropic's <c>results_url</c>), not from a file.</summary>
    BatchResults,
}

/// <summary>
/// A request's operation, the file (or, for the batch API, the batch) it names and, for Azure's deployment paths, the
/// deployment (the model).
/// </summary>
public sealed record SimulatedRoute(SimulatedOperation Operation, string? FileId = null, string? Deployment = null)
{
    public bool IsBatchRequest => Operation is SimulatedOperation.BatchCreate or SimulatedOperation.BatchList
        or SimulatedOperation.BatchGet or SimulatedOperation.BatchCancel or SimulatedOperation.BatchResults;

    public bool IsModelRequest => Operation is SimulatedOperation.ChatCompletions or SimulatedOperation.Completions
        or SimulatedOperation.Embeddings or SimulatedOperation.Responses;
}

/// <summary>
/// An upstream provider on a real in-process Kestrel server on 127.0.0.1 (port chosen by the system), speaking
/// the provider's wire format as its public API reference describes it: authentication, JSON bodies with a model,
/// chat completions (plain and streamed event by event, each flushed), completions, embeddings, responses, and a
/// Files API (multipart upload, list with paging, get, content, delete). Faults are scripted per test (a queue, a
/// rule per model, or one for every request); every request is recorded. The dialect (paths, authentication,
/// error shapes) is the subclass's.
/// </summary>
public abstract partial class UpstreamSimulator : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Fault> _queued = new();
    private readonly ConcurrentDictionary<string, Fault> _byModel = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SimulatedFile> _files = new(StringComparer.Ordinal);
    private readonly List<RecordedRequest> _requests = [];
    private readonly List<(Func<bool> Condition, TaskCompletionSource Done)> _waiters = [];
    private readonly object _gate = new();
    private long _fileCounter;
    private int _received;
    private int _inFlight;
    private int _maxInFlight;
    private int _aborted;
    private int _completed;

    protected UpstreamSimulator(string apiKey)
    {
        ApiKey = apiKey;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Limits.MaxRequestBodySize = null;
        });
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    /// <summary>The key the simulator accepts.</summary>
    public string ApiKey { get; }

    /// <summary><c>http://127.0.0.1:PORT</c>.</summary>
    public Uri Origin { get; private set; } = null!;

    /// <summary>What the provider's SDK takes as base URL.</summary>
    public abstract Uri BaseUrl { get; }

    /// <summary>The text of every normal answer (split at spaces into stream events).</summary>
    public string ReplyText { get; set; } = "Hello from the simulator, streamed word by word.";

    /// <summary>The clock requests are timed by when recorded (a test's fake clock, to see when its client called).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>The fault for every request that no queued fault or model rule caught; null: answer normally.</summary>
    public Fault? Always { get; set; }

    /// <summary>
    /// While set, no request's body is read until it is released (or the client goes away): an upstream that stops
    /// reading what it is sent, so that the client's writes stall once the buffers between are full.
    /// </summary>
    public Hold? HoldRequestBodies { get; set; }

    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    public IReadOnlyCollection<SimulatedFile> Files => [.. _files.Values];

    /// <summary>Requests received so far (counted as they arrive, before their bodies are read).</summary>
    public int Received => Volatile.Read(ref _received);

    /// <summary>Requests being handled now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most requests handled at once so far.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Requests whose client went away while they were handled.</summary>
    public int Aborted => Volatile.Read(ref _aborted);

    /// <summary>Requests fully handled (answered, failed or aborted).</summary>
    public int Completed => Volatile.Read(ref _completed);

    protected async Task ListenAsync()
    {
        await _app.StartAsync();
        string address = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        Origin = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    /// <summary>The next request (of any kind) meets this fault.</summary>
    public void Enqueue(Fault fault) => _queued.Enqueue(fault);

    /// <summary>Every request for <paramref name="model"/> meets this fault (until <see cref="ClearFaults"/>).</summary>
    public void SetRule(string model, Fault fault) => _byModel[model] = fault;

    public void ClearFaults()
    {
        _queued.Clear();
        _byModel.Clear();
        Always = null;
        HoldRequestBodies = null;
        HoldBatchesInProgress = null;
        HoldAfterLines = 0;
        Clock = TimeProvider.System;
        _batchEnds.Clear();
    }

    /// <summary>Adds a file as if it had been uploaded earlier.</summary>
    public SimulatedFile AddFile(string filename, string purpose, byte[] content, long? createdAt = null)
    {
        var file = new SimulatedFile(NewFileId(), filename, purpose, createdAt ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(), content);
        _files[file.Id] = file;
        return file;
    }

    public Task WaitForInFlightAsync(int count, CancellationToken cancellationToken = default) => WaitForAsync(() => InFlight >= count, cancellationToken);

    public Task WaitForReceivedAsync(int count, CancellationToken cancellationToken = default) => WaitForAsync(() => Received >= count, cancellationToken);

    public Task WaitForAbortedAsync(int count, CancellationToken cancellationToken = default) => WaitForAsync(() => Aborted >= count, cancellationToken);

    public Task WaitForCompletedAsync(int count, CancellationToken cancellationToken = default) => WaitForAsync(() => Completed >= count, cancellationToken);

    private Task WaitForAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (condition())
            {
                return Task.CompletedTask;
            }
            _waiters.Add((condition, done));
        }
        return done.Task.WaitAsync(cancellationToken);
    }

    private void Changed()
    {
        lock (_gate)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition())
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>The route of a request, or null when the provider has no such path.</summary>
    protected abstract SimulatedRoute? Resolve(HttpRequest request);

    /// <summary>A problem with the request before authentication (Azure: the api-version), or null.</summary>
    protected virtual (int Status, string Body)? CheckProtocol(HttpRequest request, SimulatedRoute route) => null;

    /// <summary>Whether the request carries the accepted key; the answer when it does not.</summary>
    protected abstract (int Status, string Body)? CheckKey(HttpRequest request);

    /// <summary>The provider's error body for a status (used by <see cref="Fault.Status"/> without a body).</summary>
    protected abstract string ErrorBody(int status, string message, string? param = null, string? code = null);

    /// <summary>The provider's answer to an unknown path.</summary>
    protected abstract (int Status, string Body) NotFound();

    /// <summary>A problem with the model a request names (Azure: no such deployment), or null.</summary>
    protected virtual (int Status, string Body)? CheckModel(string? model) => null;

    /// <summary>Whether a model request's body must name its model (not on Azure's deployment paths).</summary>
    protected virtual bool ModelRequired(SimulatedRoute route) => true;

    /// <summary>Whether a file upload must carry a <c>purpose</c> field (Anthropic's Files API takes none).</summary>
    protected virtual bool UploadNeedsPurpose => true;

    /// <summary>A file object in the dialect's shape (OpenAI's by default).</summary>
    protected virtual string FileObjectJson(SimulatedFile file) => SimulatedAnswers.FileObject(file);

    /// <summary>A problem with a model request's body beyond its model (a dialect's required fields), or null.</summary>
    protected virtual (int Status, string Body)? CheckModelRequest(SimulatedRoute route, JsonElement body) => null;

    /// <summary>A model request's normal answer, in the dialect's shape (OpenAI's by default).</summary>
    protected virtual string ModelAnswer(SimulatedRoute route, string model, JsonElement body) => SimulatedAnswers.Json(route.Operation, model, body, ReplyText);

    /// <summary>A streamed model request's events, in the dialect's shape (OpenAI's by default).</summary>
    protected virtual IEnumerable<string> ModelEvents(SimulatedRoute route, string model, JsonElement body) => SimulatedAnswers.Events(route.Operation, model, body, ReplyText);

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _received);
        int now = Interlocked.Increment(ref _inFlight);
        int max;
        while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
        {
        }
        bool abortedByUs = false;
        Changed();
        try
        {
            var outcome = await ServeAsync(context);
            if (outcome == Served.Aborted)
            {
                abortedByUs = true;
                context.Abort();
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        finally
        {
            if (context.RequestAborted.IsCancellationRequested && !abortedByUs)
            {
                Interlocked.Increment(ref _aborted);
            }
            Interlocked.Decrement(ref _inFlight);
            Interlocked.Increment(ref _completed);
            Changed();
        }
    }

    private enum Served
    {
        Answered,
        Aborted,
    }

    private async Task<Served> ServeAsync(HttpContext context)
    {
        var request = context.Request;
        var aborted = context.RequestAborted;
        if (Resolve(request) is not { } route)
        {
            Record(request, [], null);
            var (status, answer) = NotFound();
            await WriteJsonAsync(context, status, answer);
            return Served.Answered;
        }
        if (CheckProtocol(request, route) is { } protocolProblem)
        {
            Record(request, [], null);
            await WriteJsonAsync(context, protocolProblem.Status, protocolProblem.Body);
            return Served.Answered;
        }
        byte[] requestBody = [];
        UploadedFile? upload = null;
        string? uploadProblem = null;
        if (HoldRequestBodies is { } bodies)
        {
            await bodies.Released.WaitAsync(aborted);
        }
        if (route.Operation == SimulatedOperation.FileUpload)
        {
            (upload, uploadProblem) = await ReadUploadAsync(request, UploadNeedsPurpose, aborted);
        }
        else if (request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            requestBody = await ReadAllAsync(request.Body, aborted);
        }
        Record(request, requestBody, upload);
        if (CheckKey(request) is { } keyProblem)
        {
            await WriteJsonAsync(context, keyProblem.Status, keyProblem.Body);
            return Served.Answered;
        }

        JsonElement body = default;
        string? model = route.Deployment;
        if (route.IsModelRequest)
        {
            try
            {
                using var document = JsonDocument.Parse(requestBody);
                body = document.RootElement.Clone();
            }
            catch (JsonException)
            {
                await WriteJsonAsync(context, 400, ErrorBody(400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.", null, null));
                return Served.Answered;
            }
            if (body.ValueKind != JsonValueKind.Object)
            {
                await WriteJsonAsync(context, 400, ErrorBody(400, "The request body must be a JSON object.", null, null));
                return Served.Answered;
            }
            if (body.TryGetProperty("model", out var named) && named.ValueKind == JsonValueKind.String)
            {
                model ??= named.GetString();
            }
            else if (ModelRequired(route))
            {
                await WriteJsonAsync(context, 400, ErrorBody(400, "you must provide a model parameter", null, null));
                return Served.Answered;
            }
            if (CheckModel(model) is { } modelProblem)
            {
                await WriteJsonAsync(context, modelProblem.Status, modelProblem.Body);
                return Served.Answered;
            }
            if (CheckModelRequest(route, body) is { } requestProblem)
            {
                await WriteJsonAsync(context, requestProblem.Status, requestProblem.Body);
                return Served.Answered;
            }
        }

        Fault? fault = _queued.TryDequeue(out var next) ? next
            : model is not null && _byModel.TryGetValue(model, out var rule) ? rule
            : Always;
        switch (fault)
        {
            case StatusFault status:
                foreach (var (name, value) in status.Headers)
                {
                    context.Response.Headers[name] = value;
                }
                await WriteJsonAsync(context, status.Code, status.Body ?? ErrorBody(status.Code, DefaultMessage(status.Code), null, null));
                return Served.Answered;
            case DelayFault delay:
                await Task.Delay(delay.Duration, aborted);
                break;
            case MalformedJsonFault:
                await WriteJsonAsync(context, 200, "{\"id\": \"chatcmpl-broken\", \"object\": \"chat.completion\", \"choices\": [");
                return Served.Answered;
            case ChunkedJsonFault chunked:
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/json";
                for (int offset = 0; offset < chunked.Body.Length; offset += 1 << 20)
                {
                    if (chunked.LastPieceWhen is { } last && offset + (1 << 20) >= chunked.Body.Length)
                    {
                        await last.Released.WaitAsync(aborted);
                    }
                    await context.Response.Body.WriteAsync(chunked.Body.AsMemory(offset, Math.Min(1 << 20, chunked.Body.Length - offset)), aborted);
                    await context.Response.Body.FlushAsync(aborted);
                }
                return Served.Answered;
            case CloseConnectionFault:
                return Served.Aborted;
            case HoldFault hold:
                await hold.Gate.Released.WaitAsync(aborted);
                break;
        }

        if (route.IsModelRequest)
        {
            bool stream = route.Operation != SimulatedOperation.Embeddings
                && body.TryGetProperty("stream", out var streamFlag) && streamFlag.ValueKind == JsonValueKind.True;
            if (!stream)
            {
                await WriteJsonAsync(context, 200, ModelAnswer(route, model ?? "", body));
                return Served.Answered;
            }
            return await StreamAsync(context, ModelEvents(route, model ?? "", body), fault, aborted);
        }
        if (route.IsBatchRequest)
        {
            await ServeBatchesAsync(context, route, requestBody);
            return Served.Answered;
        }
        return await ServeFilesAsync(context, route, upload, uploadProblem);
    }

    private static async Task<Served> StreamAsync(HttpContext context, IEnumerable<string> events, Fault? fault, CancellationToken aborted)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        int sent = 0;
        foreach (string sse in events)
        {
            if (fault is DropStreamFault drop && sent == drop.Events)
            {
                if (drop.DropWhen is { } gate)
                {
                    await gate.Released.WaitAsync(aborted);
                }
                return Served.Aborted;
            }
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(sse), aborted);
            await context.Response.Body.FlushAsync(aborted);
            sent++;
            if (fault is PauseStreamFault pause && sent == 1)
            {
                await pause.Gate.Released.WaitAsync(aborted);
            }
        }
        return Served.Answered;
    }

    private async Task<Served> ServeFilesAsync(HttpContext context, SimulatedRoute route, UploadedFile? upload, string? uploadProblem)
    {
        switch (route.Operation)
        {
            case SimulatedOperation.FileUpload:
                if (upload is null)
                {
                    await WriteJsonAsync(context, 400, ErrorBody(400, uploadProblem ?? "Invalid file upload.", uploadProblem?.Contains("purpose", StringComparison.Ordinal) == true ? "purpose" : "file"));
                    return Served.Answered;
                }
                var file = AddFile(upload.Filename, upload.Purpose, upload.Content);
                await WriteJsonAsync(context, 200, FileObjectJson(file));
                return Served.Answered;
            case SimulatedOperation.FileList:
                await WriteJsonAsync(context, 200, ListFiles(context.Request.Query));
                return Served.Answered;
            case SimulatedOperation.FileGet when _files.TryGetValue(route.FileId!, out var found):
                await WriteJsonAsync(context, 200, FileObjectJson(found));
                return Served.Answered;
            case SimulatedOperation.FileContent when _files.TryGetValue(route.FileId!, out var found):
                context.Response.ContentType = "application/octet-stream";
                context.Response.ContentLength = found.Content.Length;
                await context.Response.Body.WriteAsync(found.Content, context.RequestAborted);
                return Served.Answered;
            case SimulatedOperation.FileDelete when _files.TryRemove(route.FileId!, out var removed):
                await WriteJsonAsync(context, 200, $$"""{"id":{{JsonSerializer.Serialize(removed.Id)}},"object":"file","deleted":true}""");
                return Served.Answered;
            default:
                await WriteJsonAsync(context, 404, ErrorBody(404, $"No such File object: {route.FileId}", "id", null));
                return Served.Answered;
        }
    }

    /// <summary>OpenAI's file list: <c>limit</c> (1–10000, default 10000), <c>order</c> (default desc), <c>after</c>, <c>purpose</c>.</summary>
    protected virtual string ListFiles(IQueryCollection query)
    {
        int limit = int.TryParse(query["limit"], out int l) && l is >= 1 and <= 10_000 ? l : 10_000;
        bool ascending = query["order"] == "asc";
        string? purpose = query["purpose"];
        string? after = query["after"];
        var files = _files.Values.Where(f => string.IsNullOrEmpty(purpose) || f.Purpose == purpose);
        var ordered = (ascending ? files.OrderBy(f => f.Id, StringComparer.Ordinal) : files.OrderByDescending(f => f.Id, StringComparer.Ordinal)).ToList();
        if (!string.IsNullOrEmpty(after))
        {
            int index = ordered.FindIndex(f => f.Id == after);
            ordered = index < 0 ? [] : ordered.Skip(index + 1).ToList();
        }
        var page = ordered.Take(limit).ToList();
        return SimulatedAnswers.FileList(page, hasMore: ordered.Count > limit);
    }

    private string NewFileId() => $"file-sim{Interlocked.Increment(ref _fileCounter):D16}";

    private static string DefaultMessage(int status) => status switch
    {
        401 => "Incorrect API key provided.",
        402 => "You exceeded your current quota, please check your plan and billing details.",
        403 => "You are not allowed to access this resource.",
        404 => "The model does not exist or you do not have access to it.",
        429 => "Rate limit reached for requests. Please try again later.",
        500 => "The server had an error while processing your request. Sorry about that!",
        503 => "The engine is currently overloaded, please try again later.",
        _ => $"Simulated error {status}.",
    };

    private void Record(HttpRequest request, byte[] body, UploadedFile? upload)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in request.Headers)
        {
            headers[name] = values.ToString();
        }
        lock (_gate)
        {
            _requests.Add(new RecordedRequest(request.Method, request.Path.Value ?? "", request.QueryString.Value ?? "", headers, body, upload) { At = Clock.GetUtcNow() });
        }
    }

    private static async Task<byte[]> ReadAllAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        await body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    /// <summary>Reads a multipart upload section by section, the file's bytes copied as they arrive.</summary>
    private static async Task<(UploadedFile? File, string? Problem)> ReadUploadAsync(HttpRequest request, bool needsPurpose, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType) || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
        {
            return (null, "The request must be multipart/form-data.");
        }
        var reader = new MultipartReader(boundary, request.Body);
        string? purpose = null;
        string? filename = null;
        string? fileType = null;
        byte[]? content = null;
        MultipartSection? section;
        while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
        {
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition))
            {
                continue;
            }
            string name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
            if (name == "purpose")
            {
                purpose = await new StreamReader(section.Body, Encoding.UTF8).ReadToEndAsync(cancellationToken);
            }
            else if (name == "file")
            {
                // HTML's form encoding percent-encodes '"', CR and LF in a quoted filename.
                filename = (HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value ?? "")
                    .Replace("%22", "\"", StringComparison.Ordinal).Replace("%0D", "\r", StringComparison.Ordinal).Replace("%0A", "\n", StringComparison.Ordinal);
                fileType = section.ContentType;
                content = await ReadAllAsync(section.Body, cancellationToken);
            }
        }
        if (string.IsNullOrEmpty(purpose) && needsPurpose)
        {
            return (null, "Missing required parameter: 'purpose'.");
        }
        if (content is null)
        {
            return (null, "Missing required parameter: 'file'.");
        }
        return (new UploadedFile(purpose ?? "", filename ?? "", fileType, content), null);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
