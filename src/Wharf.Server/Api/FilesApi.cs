using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Server.Auth;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Api;

/// <summary>The Files API: thin handlers that parse, call <see cref="FileService"/> and map the result.</summary>
internal static class FilesApi
{
    private const string MetadataFilterPrefix = "metadata.";
    private const long MultipartOverheadBytes = 1024 * 1024;

    public static RouteGroupBuilder MapFilesApi(this RouteGroupBuilder api, IOptions<FilesOptions> options)
    {
        var read = api.MapGroup("/files").RequireScope(ApiScopes.FilesRead).WithTags("Files").WithMetadata(ErrorResponses.Upstream);
        read.MapGet("/", List).WithSummary("List the workspace's files (or, with source=upstream, a provider's own)")
            .Produces<FileList>(StatusCodes.Status200OK, "application/json").WithQuery(
            ("limit", "1 to Wharf:Files:MaxListLimit; default Wharf:Files:DefaultListLimit"),
            ("order", "asc or desc (default)"),
            ("after", "a file id: the items after it"),
            ("before", "a file id: the items just before it"),
            ("purpose", "only files of this purpose"),
            ("status", "uploaded, processed, error, or processing"),
            ("provider", "only files with a copy on this provider (also x-model-provider, as query or header)"),
            ("collection", "only files of this collection"),
            ("source", "wharf (the catalog, default) or upstream (the provider's own files, live)"),
            ("metadata.{key}", "only files whose metadata has this key with this value (repeatable)"));
        read.MapGet("/{id}", Get).WithSummary("Retrieve a file");
        read.MapGet("/{id}/content", Content).WithSummary("Download a file's bytes (Range and conditional requests served)")
            .Produces<Stream>(StatusCodes.Status200OK, "application/octet-stream");

        var write = api.MapGroup("/files").RequireScope(ApiScopes.FilesWrite).WithTags("Files").WithMetadata(ErrorResponses.Upstream);
        write.MapPost("/", Upload).WithSummary("Upload a file (multipart/form-data, streamed to storage)")
            .Accepts<FileUploadForm>("multipart/form-data")
            .WithMetadata(new BodySizeLimit(options.Value.MaxUploadBytes + MultipartOverheadBytes))
            .DisableAntiforgery();
        write.MapDelete("/{id}", Delete).WithSummary("Delete a file (and its copies on providers)");
        return api;
    }

    private static async Task<Results<Ok<FileObject>, ErrorResult>> Upload(
        HttpRequest request, ClaimsPrincipal user, FileService files, CancellationToken cancellationToken)
    {
        string workspaceId = user.WorkspaceIdOf();
        var form = await MultipartUpload.ReadAsync(
            request, "file", (body, ct) => files.StageAsync(workspaceId, body, ct), cancellationToken);
        if (!form.IsOk)
        {
            return form.Error.ToResult();
        }
        await using var upload = form.Value;
        var fields = new FileUploadRequest
        {
            Purpose = upload.Field("purpose"),
            Filename = upload.Filename,
            ContentType = upload.ContentType,
            Metadata = upload.Field("metadata"),
            Collection = upload.Field("collection"),
            Provider = upload.Field("provider") ?? ProviderOf(request),
            ExpiresAfterAnchor = upload.Field("expires_after[anchor]"),
            ExpiresAfterSeconds = upload.Field("expires_after[seconds]"),
        };
        var created = await files.CreateAsync(workspaceId, fields, upload.Content, cancellationToken);
        return created.IsOk ? TypedResults.Ok(FileObject.From(created.Value)) : created.Error.ToResult();
    }

    private static async Task<Results<JsonHttpResult<FileList>, ErrorResult>> List(
        HttpRequest request, ClaimsPrincipal user, FileService files, ProviderFileCopies copies, CancellationToken cancellationToken)
    {
        var query = request.Query;
        switch (Single(query, "source"))
        {
            case null or "wharf":
                break;
            case "upstream":
                return await ListUpstream(request, user, copies, cancellationToken);
            default:
                return WharfErrors.Invalid("source", "Invalid 'source': expected 'wharf' (Wharf's catalog, the default) or 'upstream' (the provider's own files).", "invalid_source").ToResult();
        }
        var listRequest = new FileListRequest
        {
            Limit = Single(query, "limit"),
            Order = Single(query, "order"),
            After = Single(query, "after"),
            Before = Single(query, "before"),
            Purpose = Single(query, "purpose"),
            Status = Single(query, "status"),
            Provider = ProviderOf(request),
            Collection = Single(query, "collection"),
            Metadata = [.. query
                .Where(q => q.Key.StartsWith(MetadataFilterPrefix, StringComparison.Ordinal))
                .SelectMany(q => q.Value.Select(v => KeyValuePair.Create(q.Key[MetadataFilterPrefix.Length..], v ?? "")))],
        };
        var page = await files.ListAsync(user.WorkspaceIdOf(), listRequest, cancellationToken);
        // The context's own type info, so its generated serializer writes the page: the framework's options would
        // resolve the same type through the slower metadata-driven converters.
        return page.IsOk ? TypedResults.Json(FileList.From(page.Value), WireJsonContext.Default.FileList) : page.Error.ToResult();
    }

    /// <summary>
    /// <c>source=upstream</c>: the workspace's own copies on the provider, live, mapped to OpenAI's file object, one
    /// page with the provider's cursor passed through.
    /// </summary>
    private static async Task<Results<JsonHttpResult<FileList>, ErrorResult>> ListUpstream(
        HttpRequest request, ClaimsPrincipal user, ProviderFileCopies copies, CancellationToken cancellationToken)
    {
        var query = request.Query;
        if (ProviderOf(request) is not { } provider)
        {
            return WharfErrors.Missing("provider").ToResult();
        }
        var listRequest = new UpstreamListRequest(
            Single(query, "limit"), Single(query, "after"), Single(query, "before"), Single(query, "order"), Single(query, "purpose"));
        var page = await copies.ListUpstreamAsync(user.WorkspaceIdOf(), provider, listRequest, cancellationToken);
        return page.IsOk
            ? TypedResults.Json(FileList.FromUpstream(provider, page.Value), WireJsonContext.Default.FileList)
            : page.Error.ToResult();
    }

    private static async Task<Results<Ok<FileObject>, ErrorResult>> Get(
        string id, ClaimsPrincipal user, FileService files, CancellationToken cancellationToken)
    {
        var file = await files.GetAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return file.IsOk ? TypedResults.Ok(FileObject.From(file.Value)) : file.Error.ToResult();
    }

    /// <summary>
    /// Streams the bytes: a plain GET through <see cref="WholeContentResult"/>; the framework answers <c>Range</c>
    /// (206) and the conditional headers (304, 412). The ETag is the SHA-256, so a file whose SHA-256 is still
    /// being computed is served without one.
    /// </summary>
    private static async Task<Results<WholeContentResult, FileStreamHttpResult, ErrorResult>> Content(
        string id, HttpContext context, ClaimsPrincipal user, FileService files, CancellationToken cancellationToken)
    {
        var opened = await files.OpenContentAsync(user.WorkspaceIdOf(), id, cancellationToken);
        if (!opened.IsOk)
        {
            return opened.Error.ToResult();
        }
        var file = opened.Value.File;
        context.Response.Headers.ContentDisposition = ContentDisposition.Attachment(file.Filename);
        // A type stored before types were checked on the way in may not be sendable as a header: never a 500 for it.
        string contentType = FileFieldRules.IsSendableContentType(file.ContentType) ? file.ContentType : "application/octet-stream";
        var lastModified = DateTimeOffset.FromUnixTimeSeconds(file.CreatedAt);
        var entityTag = file.Sha256 is null ? null : new EntityTagHeaderValue($"\"{file.Sha256}\"");
        if (WholeContentResult.Serves(context.Request))
        {
            return new WholeContentResult(opened.Value.Content, contentType, lastModified, entityTag);
        }
        return TypedResults.Stream(opened.Value.Content, contentType, lastModified: lastModified, entityTag: entityTag, enableRangeProcessing: true);
    }

    private static async Task<Results<Ok<DeletedObject>, ErrorResult>> Delete(
        string id, ClaimsPrincipal user, FileService files, CancellationToken cancellationToken)
    {
        var deleted = await files.DeleteAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return deleted.IsOk ? TypedResults.Ok(new DeletedObject(deleted.Value.Id, "file", true)) : deleted.Error.ToResult();
    }

    private static string? Single(IQueryCollection query, string key) =>
        query.TryGetValue(key, out var values) ? values[^1] : null;

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>The provider a request names: query <c>provider</c>, query <c>x-model-provider</c>, else that header.</summary>
    /// <summary>The provider named by query (<c>provider</c>, <c>x-model-provider</c>) or by the <c>x-model-provider</c> header.</summary>
    internal static string? ProviderOf(HttpRequest request) =>
        Single(request.Query, "provider") ?? Single(request.Query, "x-model-provider") ?? NullIfEmpty(request.Headers["x-model-provider"]);
}

/// <summary>A route's request body limit, applied by the framework before the handler reads a byte.</summary>
internal sealed class BodySizeLimit(long bytes) : IRequestSizeLimitMetadata
{
    public long? MaxRequestBodySize => bytes;
}

/// <summary>A <c>Content-Disposition</c> value no filename can break: ASCII fallback plus RFC 5987 <c>filename*</c>.</summary>
internal static class ContentDisposition
{
    public static string Attachment(string filename)
    {
        var ascii = new StringBuilder(filename.Length);
        foreach (char c in filename)
        {
            ascii.Append(c is >= ' ' and < (char)0x7F and not '"' and not '\\' and not '/' ? c : '_');
        }
        return $"attachment; filename=\"{ascii}\"; filename*=UTF-8''{Uri.EscapeDataString(filename)}";
    }
}
