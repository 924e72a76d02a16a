using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>
/// Gemini's Files API and batch mode, as the public reference describes them. Files: a resumable upload
/// (<c>POST /upload/v1beta/files</c> with <c>X-Goog-Upload-Protocol: resumable</c>, <c>X-Goog-Upload-Command: start</c>,
/// <c>X-Goog-Upload-Header-Content-Length</c> and <c>-Content-Type</c>, answered with <c>x-goog-upload-url</c>; then
/// <c>upload</c> and <c>upload, finalize</c> commands at the <c>X-Goog-Upload-Offset</c> received so far), the
/// <c>File</c> resource (<c>name, displayName, mimeType, sizeBytes, createTime, updateTime, expirationTime, uri,
/// state</c>), <c>GET/DELETE /v1beta/files/{id}</c>, <c>GET /v1beta/files?pageSize&amp;pageToken</c> (at most 100, newest
/// first, a token it issued), and <c>GET /download/v1beta/files/{id}:download?alt=media</c>. A file is gone 48 hours
/// after its upload on the simulator's clock (<see cref="ClockOffset"/>). Batches:
/// <c>POST /v1beta/models/{model}:batchGenerateContent</c> taking a JSONL file of <c>{key, request}</c> lines, each
/// checked and answered by the same logic as <c>generateContent</c>; the answer is an <c>Operation</c> whose
/// <c>metadata</c> is the batch (<c>state</c> <c>BATCH_STATE_*</c>, <c>batchStats</c>); <c>GET /v1beta/batches/{id}</c>,
/// <c>POST .../{id}:cancel</c>, <c>GET /v1beta/batches</c>. A batch runs when the test says (<see cref="RunBatches"/>),
/// or at once with <see cref="RunBatchesAtOnce"/>; its responses file holds <c>{key, response}</c> or
/// <c>{key, error}</c> lines in input order.
/// </summary>
public sealed partial class GeminiSimulator
{
    private static readonly TimeSpan FileLifetime = TimeSpan.FromHours(48);

    private readonly ConcurrentDictionary<string, SimulatedFile> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UploadSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SimulatedBatch> _batches = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _pageTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<Fault> _fileFaults = new();
    private long _sequence;

    /// <summary>How far the simulator's clock is ahead of the real one: files older than 48 hours on it are gone.</summary>
    public TimeSpan ClockOffset { get; set; }

    private DateTimeOffset Now => DateTimeOffset.UtcNow + ClockOffset;

    /// <summary>Batches end as soon as they are created (else they stay pending until <see cref="RunBatches"/>).</summary>
    public bool RunBatchesAtOnce { get; set; } = true;

    /// <summary>Lines whose key is here end with this error status (<c>{key, error}</c>) instead of an answer.</summary>
    public ConcurrentDictionary<string, int> FailingKeys { get; } = new(StringComparer.Ordinal);

    /// <summary>The next Files API or batch request meets this fault (upload, get, list, delete, download, batches).</summary>
    public void EnqueueFileFault(Fault fault) => _fileFaults.Enqueue(fault);

    /// <summary>The files the simulator holds now (expired ones left out), by name.</summary>
    public IReadOnlyDictionary<string, SimulatedFile> Files => _files.Where(f => !f.Value.IsExpired(Now)).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);

    /// <summary>The batches, by name.</summary>
    public IReadOnlyDictionary<string, SimulatedBatch> Batches => _batches;

    /// <summary>Adds a file as if another client had uploaded it (for listings that hold files Wharf did not make).</summary>
    public string AddFile(string displayName, string mimeType, byte[] content) =>
        Store(displayName, mimeType, content).Name;

    /// <summary>Runs every pending batch to its end now.</summary>
    public void RunBatches()
    {
        foreach (var batch in _batches.Values.Where(b => b.State == "BATCH_STATE_PENDING"))
        {
            Run(batch);
        }
    }

    /// <summary>A file as the simulator keeps it.</summary>
    public sealed record SimulatedFile(string Name, string DisplayName, string MimeType, byte[] Content, DateTimeOffset CreateTime, string Uri)
    {
        public DateTimeOffset ExpirationTime => CreateTime + FileLifetime;

        public bool IsExpired(DateTimeOffset now) => now >= ExpirationTime;
    }

    /// <summary>A batch as the simulator keeps it.</summary>
    public sealed class SimulatedBatch(string name, string model, string displayName, string inputFile, DateTimeOffset created)
    {
        public string Name => name;
        public string Model => model;
        public string DisplayName => displayName;
        public string InputFile => inputFile;
        public DateTimeOffset CreateTime => created;
        public string State { get; set; } = "BATCH_STATE_PENDING";
        public string? ResponsesFile { get; set; }
        public int RequestCount { get; set; }
        public int Succeeded { get; set; }
        public int Failed { get; set; }
    }

    private sealed record UploadSession(string DisplayName, string MimeType, long Length, MemoryStream Received);

    private static bool IsFilesOrBatchesPath(string path) =>
        path.StartsWith("/upload/", StringComparison.Ordinal) || path.StartsWith("/download/", StringComparison.Ordinal)
        || path.StartsWith("/v1beta/files", StringComparison.Ordinal) || path.StartsWith("/v1beta/batches", StringComparison.Ordinal);

    /// <returns>Whether to cut the connection.</returns>
    private async Task<bool> ServeFilesAndBatchesAsync(HttpContext context, byte[] body)
    {
        var request = context.Request;
        string path = request.Path.Value ?? "";
        string? key = request.Headers["x-goog-api-key"].FirstOrDefault();
        bool session = path == "/upload/v1beta/files" && request.Query.ContainsKey("upload_id");
        if (!session && string.IsNullOrEmpty(key))
        {
            await WriteJsonAsync(context, 403, ErrorBody(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
            return false;
        }
        if (!string.IsNullOrEmpty(key) && key != ApiKey)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "API key not valid. Please pass a valid API key.", reason: "API_KEY_INVALID"));
            return false;
        }
        if (_fileFaults.TryDequeue(out var fault))
        {
            switch (fault)
            {
                case StatusFault status:
                    foreach (var (name, value) in status.Headers)
                    {
                        context.Response.Headers[name] = value;
                    }
                    await WriteJsonAsync(context, status.Code, status.Body ?? ErrorBody(status.Code, DefaultMessage(status.Code)));
                    return false;
                case DelayFault delay:
                    await Task.Delay(delay.Duration, context.RequestAborted);
                    break;
                case MalformedJsonFault:
                    await WriteJsonAsync(context, 200, "{\"file\": {\"name\": ");
                    return false;
                case CloseConnectionFault:
                    return true;
            }
        }
        string method = request.Method;
        switch (path)
        {
            case "/upload/v1beta/files" when method == "POST" && session:
                await ContinueUploadAsync(context, body);
                return false;
            case "/upload/v1beta/files" when method == "POST":
                await StartUploadAsync(context, body);
                return false;
            case "/v1beta/files" when method == "GET":
                await ListFilesAsync(context);
                return false;
            case "/v1beta/batches" when method == "GET":
                await ListBatchesAsync(context);
                return false;
        }
        if (path.StartsWith("/download/v1beta/files/", StringComparison.Ordinal) && path.EndsWith(":download", StringComparison.Ordinal) && method == "GET")
        {
            string name = path["/download/v1beta/".Length..^":download".Length];
            if (request.Query["alt"] != "media")
            {
                await WriteJsonAsync(context, 400, ErrorBody(400, "A download needs alt=media."));
                return false;
            }
            if (!TryGetFile(name, out var file))
            {
                await WriteJsonAsync(context, 404, ErrorBody(404, $"File {name} not found."));
                return false;
            }
            context.Response.StatusCode = 200;
            context.Response.ContentType = file.MimeType;
            context.Response.ContentLength = file.Content.Length;
            await context.Response.Body.WriteAsync(file.Content, context.RequestAborted);
            return false;
        }
        if (path.StartsWith("/v1beta/files/", StringComparison.Ordinal))
        {
            string name = path["/v1beta/".Length..];
            if (!TryGetFile(name, out var file))
            {
                await WriteJsonAsync(context, 404, ErrorBody(404, $"File {name} not found."));
                return false;
            }
            if (method == "GET")
            {
                await WriteJsonAsync(context, 200, FileJson(file).ToJsonString());
                return false;
            }
            if (method == "DELETE")
            {
                _files.TryRemove(name, out _);
                await WriteJsonAsync(context, 200, "{}");
                return false;
            }
        }
        if (path.StartsWith("/v1beta/models/", StringComparison.Ordinal) && path.EndsWith(":batchGenerateContent", StringComparison.Ordinal) && method == "POST")
        {
            string model = Uri.UnescapeDataString(path["/v1beta/models/".Length..^":batchGenerateContent".Length]);
            await CreateBatchAsync(context, model, body);
            return false;
        }
        if (path.StartsWith("/v1beta/batches/", StringComparison.Ordinal))
        {
            string rest = path["/v1beta/".Length..];
            bool cancel = rest.EndsWith(":cancel", StringComparison.Ordinal);
            string name = cancel ? rest[..^":cancel".Length] : rest;
            if (!_batches.TryGetValue(name, out var batch))
            {
                await WriteJsonAsync(context, 404, ErrorBody(404, $"Batch {name} not found."));
                return false;
            }
            if (cancel && method == "POST")
            {
                if (batch.State is "BATCH_STATE_PENDING" or "BATCH_STATE_RUNNING")
                {
                    batch.State = "BATCH_STATE_CANCELLED";
                }
                await WriteJsonAsync(context, 200, "{}");
                return false;
            }
            if (!cancel && method == "GET")
            {
                await WriteJsonAsync(context, 200, OperationJson(batch).ToJsonString());
                return false;
            }
        }
        await WriteJsonAsync(context, 404, ErrorBody(404, $"Method not found: {method} {path}"));
        return false;
    }

    private async Task StartUploadAsync(HttpContext context, byte[] body)
    {
        var headers = context.Request.Headers;
        string? problem = null;
        if (headers["X-Goog-Upload-Protocol"] != "resumable")
        {
            problem = "X-Goog-Upload-Protocol must be 'resumable'.";
        }
        else if (headers["X-Goog-Upload-Command"] != "start")
        {
            problem = "X-Goog-Upload-Command must be 'start' to begin an upload.";
        }
        else if (!long.TryParse(headers["X-Goog-Upload-Header-Content-Length"], NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            problem = "X-Goog-Upload-Header-Content-Length must be the file's size in bytes.";
        }
        else if (string.IsNullOrEmpty(headers["X-Goog-Upload-Header-Content-Type"]))
        {
            problem = "X-Goog-Upload-Header-Content-Type must be the file's media type.";
        }
        else if (context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            problem = "The metadata of an upload must be application/json.";
        }
        string displayName = "";
        if (problem is null)
        {
            try
            {
                var json = JsonNode.Parse(body)?.AsObject();
                if (json is null || json.Any(p => p.Key != "file") || json["file"] is not JsonObject file
                    || file.Any(p => p.Key is not ("displayName" or "display_name" or "name")))
                {
                    problem = "Invalid JSON payload received. The upload metadata must be {\"file\": {\"displayName\"}}.";
                }
                else
                {
                    displayName = (file["displayName"] ?? file["display_name"])?.GetValue<string>() ?? "";
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                problem = "Invalid JSON payload received.";
            }
        }
        if (problem is not null)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem));
            return;
        }
        string id = Guid.NewGuid().ToString("N");
        long length = long.Parse(headers["X-Goog-Upload-Header-Content-Length"]!, CultureInfo.InvariantCulture);
        _sessions[id] = new UploadSession(displayName, headers["X-Goog-Upload-Header-Content-Type"]!, length, new MemoryStream());
        context.Response.Headers["x-goog-upload-url"] = $"{BaseUrl.AbsoluteUri.TrimEnd('/')}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable";
        context.Response.Headers["x-goog-upload-status"] = "active";
        context.Response.StatusCode = 200;
    }

    private async Task ContinueUploadAsync(HttpContext context, byte[] body)
    {
        string id = context.Request.Query["upload_id"].ToString();
        if (!_sessions.TryGetValue(id, out var session))
        {
            await WriteJsonAsync(context, 404, ErrorBody(404, "No such upload session."));
            return;
        }
        string command = context.Request.Headers["X-Goog-Upload-Command"].ToString();
        bool finalize = command is "upload, finalize" or "finalize";
        if (command is not ("upload" or "upload, finalize" or "finalize"))
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "X-Goog-Upload-Command must be 'upload', 'upload, finalize' or 'finalize'."));
            return;
        }
        if (!long.TryParse(context.Request.Headers["X-Goog-Upload-Offset"], NumberStyles.None, CultureInfo.InvariantCulture, out long offset) || offset != session.Received.Length)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, $"X-Goog-Upload-Offset must be {session.Received.Length}, the bytes received so far."));
            return;
        }
        if (context.Request.ContentLength is { } declared && declared != body.Length)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "The body is not as long as its Content-Length."));
            return;
        }
        session.Received.Write(body);
        if (session.Received.Length > session.Length)
        {
            _sessions.TryRemove(id, out _);
            await WriteJsonAsync(context, 400, ErrorBody(400, "More bytes were sent than X-Goog-Upload-Header-Content-Length announced."));
            return;
        }
        if (!finalize)
        {
            context.Response.Headers["x-goog-upload-status"] = "active";
            context.Response.StatusCode = 200;
            return;
        }
        _sessions.TryRemove(id, out _);
        if (session.Received.Length != session.Length)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "The upload was finalized before X-Goog-Upload-Header-Content-Length bytes were sent."));
            return;
        }
        var file = Store(session.DisplayName, session.MimeType, session.Received.ToArray());
        context.Response.Headers["x-goog-upload-status"] = "final";
        await WriteJsonAsync(context, 200, new JsonObject { ["file"] = FileJson(file) }.ToJsonString());
    }

    private SimulatedFile Store(string displayName, string mimeType, byte[] content)
    {
        string name = "files/" + Guid.NewGuid().ToString("N")[..16];
        var file = new SimulatedFile(name, displayName, mimeType, content, Now.AddTicks(Interlocked.Increment(ref _sequence)),
            $"{BaseUrl.AbsoluteUri.TrimEnd('/')}/v1beta/{name}");
        _files[name] = file;
        return file;
    }

    private bool TryGetFile(string name, out SimulatedFile file)
    {
        if (_files.TryGetValue(name, out file!) && !file.IsExpired(Now))
        {
            return true;
        }
        return false;
    }

    private static JsonObject FileJson(SimulatedFile file) => new()
    {
        ["name"] = file.Name,
        ["displayName"] = file.DisplayName,
        ["mimeType"] = file.MimeType,
        ["sizeBytes"] = file.Content.Length.ToString(CultureInfo.InvariantCulture),
        ["createTime"] = Timestamp(file.CreateTime),
        ["updateTime"] = Timestamp(file.CreateTime),
        ["expirationTime"] = Timestamp(file.ExpirationTime),
        ["sha256Hash"] = Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(file.Content)),
        ["uri"] = file.Uri,
        ["state"] = "ACTIVE",
        ["source"] = "UPLOADED",
    };

    private static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private async Task ListFilesAsync(HttpContext context)
    {
        if (!TryPage(context, out int size, out int start, out string? problem))
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem!));
            return;
        }
        var all = _files.Values.Where(f => !f.IsExpired(Now)).OrderByDescending(f => f.CreateTime).ToList();
        var page = all.Skip(start).Take(size).ToList();
        var answer = new JsonObject { ["files"] = new JsonArray([.. page.Select(f => (JsonNode)FileJson(f))]) };
        if (start + size < all.Count)
        {
            answer["nextPageToken"] = IssueToken(start + size);
        }
        await WriteJsonAsync(context, 200, answer.ToJsonString());
    }

    /// <summary><c>pageSize</c> (default 10, at most 100) and a <c>pageToken</c> the simulator issued.</summary>
    private bool TryPage(HttpContext context, out int size, out int start, out string? problem)
    {
        size = 10;
        start = 0;
        problem = null;
        var query = context.Request.Query;
        foreach (var name in query.Keys)
        {
            if (name is not ("pageSize" or "pageToken"))
            {
                problem = $"Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter.";
                return false;
            }
        }
        if (query.TryGetValue("pageSize", out var sizeText))
        {
            if (!int.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out size) || size < 1)
            {
                problem = "pageSize must be a positive integer.";
                return false;
            }
            size = Math.Min(size, 100);
        }
        if (query.TryGetValue("pageToken", out var token) && !_pageTokens.TryGetValue(token.ToString(), out start))
        {
            problem = "Invalid page token.";
            return false;
        }
        return true;
    }

    private string IssueToken(int start)
    {
        string token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"page:{Guid.NewGuid():N}:{start}")).TrimEnd('=');
        _pageTokens[token] = start;
        return token;
    }

    /// <summary>Every <c>fileData</c> part must name a file the simulator holds (not expired) with its media type.</summary>
    private string? CheckFileData(JsonElement body)
    {
        foreach (var content in body.GetProperty("contents").EnumerateArray())
        {
            foreach (var part in content.GetProperty("parts").EnumerateArray())
            {
                if (!part.TryGetProperty("fileData", out var data))
                {
                    continue;
                }
                if (data.ValueKind != JsonValueKind.Object || data.EnumerateObject().Any(p => p.Name is not ("fileUri" or "mimeType"))
                    || !data.TryGetProperty("fileUri", out var uri) || uri.ValueKind != JsonValueKind.String)
                {
                    return "* GenerateContentRequest.contents.parts.file_data: fileUri (and optionally mimeType) only.";
                }
                var file = _files.Values.FirstOrDefault(f => f.Uri == uri.GetString());
                if (file is null || file.IsExpired(Now))
                {
                    return $"File {uri.GetString()} does not exist or has expired.";
                }
                if (data.TryGetProperty("mimeType", out var mime) && mime.GetString() != file.MimeType)
                {
                    return $"The mimeType of {uri.GetString()} is {file.MimeType}.";
                }
            }
        }
        return null;
    }

    private async Task CreateBatchAsync(HttpContext context, string model, byte[] body)
    {
        string? problem = null;
        string displayName = "";
        string inputFile = "";
        try
        {
            var json = JsonNode.Parse(body)?.AsObject();
            var batch = json?["batch"] as JsonObject;
            if (json is null || json.Any(p => p.Key != "batch") || batch is null
                || batch.Any(p => p.Key is not ("display_name" or "displayName" or "input_config" or "inputConfig" or "priority")))
            {
                problem = "Invalid JSON payload received. Expected {\"batch\": {display_name, input_config}}.";
            }
            else
            {
                displayName = (batch["display_name"] ?? batch["displayName"])?.GetValue<string>() ?? "";
                var input = (batch["input_config"] ?? batch["inputConfig"]) as JsonObject;
                inputFile = (input?["file_name"] ?? input?["fileName"])?.GetValue<string>() ?? "";
                if (displayName.Length == 0)
                {
                    problem = "* GenerateContentBatch.display_name: display_name is required.";
                }
                else if (input is null || input.Count != 1 || inputFile.Length == 0)
                {
                    problem = "* GenerateContentBatch.input_config: exactly one of file_name or requests is required.";
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            problem = "Invalid JSON payload received.";
        }
        if (problem is not null)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem));
            return;
        }
        if (!TryGetFile(inputFile, out var file))
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, $"The input file {inputFile} does not exist."));
            return;
        }
        string name = "batches/" + Guid.NewGuid().ToString("N")[..16];
        var created = new SimulatedBatch(name, model, displayName, inputFile, Now)
        {
            RequestCount = Encoding.UTF8.GetString(file.Content).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length,
        };
        _batches[name] = created;
        if (RunBatchesAtOnce)
        {
            Run(created);
        }
        await WriteJsonAsync(context, 200, OperationJson(created).ToJsonString());
    }

    /// <summary>Each line through the same checks and answers as <c>generateContent</c>; the responses in input order.</summary>
    private void Run(SimulatedBatch batch)
    {
        if (!TryGetFile(batch.InputFile, out var input))
        {
            batch.State = "BATCH_STATE_FAILED";
            return;
        }
        var output = new StringBuilder();
        foreach (string line in Encoding.UTF8.GetString(input.Content).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            string key = root.GetProperty("key").GetString()!;
            var request = root.GetProperty("request");
            string? problem = CheckGenerateRequest(request) ?? CheckFileData(request);
            JsonObject result;
            if (problem is not null || FailingKeys.TryGetValue(key, out _))
            {
                int code = problem is not null ? 400 : FailingKeys[key];
                result = new JsonObject { ["key"] = key, ["error"] = new JsonObject { ["code"] = code, ["message"] = problem ?? DefaultMessage(code), ["status"] = StatusName(code) } };
                batch.Failed++;
            }
            else
            {
                result = new JsonObject { ["key"] = key, ["response"] = JsonNode.Parse(Answers(request, batch.Model, stream: false).Single()) };
                batch.Succeeded++;
            }
            output.Append(result.ToJsonString()).Append('\n');
        }
        batch.ResponsesFile = Store($"{batch.Name}-responses", "application/jsonl", Encoding.UTF8.GetBytes(output.ToString())).Name;
        batch.State = "BATCH_STATE_SUCCEEDED";
    }

    private static JsonObject OperationJson(SimulatedBatch batch)
    {
        int pending = batch.State is "BATCH_STATE_PENDING" or "BATCH_STATE_RUNNING" ? batch.RequestCount - batch.Succeeded - batch.Failed : 0;
        var metadata = new JsonObject
        {
            ["@type"] = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            ["model"] = "models/" + batch.Model,
            ["displayName"] = batch.DisplayName,
            ["inputConfig"] = new JsonObject { ["fileName"] = batch.InputFile },
            ["createTime"] = Timestamp(batch.CreateTime),
            ["updateTime"] = Timestamp(batch.CreateTime),
            ["batchStats"] = new JsonObject
            {
                ["requestCount"] = batch.RequestCount.ToString(CultureInfo.InvariantCulture),
                ["successfulRequestCount"] = batch.Succeeded.ToString(CultureInfo.InvariantCulture),
                ["failedRequestCount"] = batch.Failed.ToString(CultureInfo.InvariantCulture),
                ["pendingRequestCount"] = pending.ToString(CultureInfo.InvariantCulture),
            },
            ["state"] = batch.State,
            ["name"] = batch.Name,
        };
        bool done = batch.State is "BATCH_STATE_SUCCEEDED" or "BATCH_STATE_FAILED" or "BATCH_STATE_CANCELLED" or "BATCH_STATE_EXPIRED";
        var operation = new JsonObject { ["name"] = batch.Name, ["metadata"] = metadata, ["done"] = done };
        if (batch.ResponsesFile is not null)
        {
            metadata["output"] = new JsonObject { ["responsesFile"] = batch.ResponsesFile };
            operation["response"] = new JsonObject
            {
                ["@type"] = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
                ["responsesFile"] = batch.ResponsesFile,
            };
        }
        return operation;
    }

    private async Task ListBatchesAsync(HttpContext context)
    {
        if (!TryPage(context, out int size, out int start, out string? problem))
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem!));
            return;
        }
        var all = _batches.Values.OrderByDescending(b => b.CreateTime).ThenByDescending(b => b.Name, StringComparer.Ordinal).ToList();
        var answer = new JsonObject { ["operations"] = new JsonArray([.. all.Skip(start).Take(size).Select(b => (JsonNode)OperationJson(b))]) };
        if (start + size < all.Count)
        {
            answer["nextPageToken"] = IssueToken(start + size);
        }
        await WriteJsonAsync(context, 200, answer.ToJsonString());
    }
}
