using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Uploads;
using Wharf.Server.Auth;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>The Uploads API: create, add parts (in any order, in parallel), complete, cancel, and read back.</summary>
internal static class UploadsApi
{
    private const int MaxJsonBytes = 256 * 1024;
    private const long PartOverheadBytes = 1024 * 1024;

    public static RouteGroupBuilder MapUploadsApi(this RouteGroupBuilder api)
    {
        var read = api.MapGroup("/uploads").RequireScope(ApiScopes.FilesRead).WithTags("Uploads");
        read.MapGet("/{id}", Get).WithSummary("Retrieve an upload, with the parts received so far");

        var write = api.MapGroup("/uploads").RequireScope(ApiScopes.FilesWrite).WithTags("Uploads");
        write.MapPost("/", Create).WithSummary("Create an upload of up to 8 GB").Accepts<UploadCreateBody>("application/json");
        write.MapPost("/{id}/parts", AddPart).WithSummary("Add a part of at most 64 MB (any order, in parallel)")
            .Accepts<UploadPartForm>("multipart/form-data")
            .WithMetadata(new BodySizeLimit(UploadService.MaxPartBytes + PartOverheadBytes))
            .DisableAntiforgery();
        write.MapPost("/{id}/complete", Complete).WithSummary("Complete an upload: its parts, in order, become a file")
            .Accepts<UploadCompleteBody>("application/json");
        write.MapPost("/{id}/cancel", Cancel).WithSummary("Cancel an upload");
        return api;
    }

    private static async Task<Results<Ok<UploadObject>, ErrorResult>> Create(
        HttpRequest request, ClaimsPrincipal user, UploadService uploads, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, MaxJsonBytes, cancellationToken);
        if (!body.IsOk)
        {
            return body.Error.ToResult();
        }
        var fields = body.Value;
        var filename = fields.String("filename");
        var purpose = fields.String("purpose");
        var bytes = fields.Int64("bytes");
        var mimeType = fields.String("mime_type");
        var expiresAfter = fields.Object("expires_after");
        var anchor = expiresAfter.Value?.String("anchor") ?? default;
        var seconds = expiresAfter.Value?.Int64("seconds") ?? default;
        // Wharf's extensions, as POST /v1/files takes them: the metadata object is checked by the same rules as the
        // form field's JSON text, and the provider may also be named by query or header.
        var collection = fields.String("collection");
        var provider = fields.String("provider");
        var error = filename.Error ?? purpose.Error ?? bytes.Error ?? mimeType.Error ?? expiresAfter.Error ?? anchor.Error ?? seconds.Error
            ?? collection.Error ?? provider.Error;
        if (error is not null)
        {
            return error.ToResult();
        }
        var created = await uploads.CreateAsync(user.WorkspaceIdOf(), new UploadCreateRequest
        {
            Filename = filename.Value,
            Purpose = purpose.Value,
            Bytes = bytes.Value,
            MimeType = mimeType.Value,
            ExpiresAfterAnchor = anchor.Value,
            ExpiresAfterSeconds = seconds.Value,
            Metadata = fields.Raw("metadata"),
            Collection = collection.Value,
            Provider = provider.Value ?? FilesApi.ProviderOf(request),
        }, cancellationToken);
        return created.IsOk ? TypedResults.Ok(UploadObject.From(new UploadView(created.Value, [], null), withParts: false)) : created.Error.ToResult();
    }

    private static async Task<Results<Ok<UploadObject>, ErrorResult>> Get(
        string id, ClaimsPrincipal user, UploadService uploads, CancellationToken cancellationToken)
    {
        var view = await uploads.GetAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return view.IsOk ? TypedResults.Ok(UploadObject.From(view.Value, withParts: true)) : view.Error.ToResult();
    }

    /// <summary>Checks the upload before reading a byte, then streams the <c>data</c> part to storage.</summary>
    private static async Task<Results<Ok<UploadPartObject>, ErrorResult>> AddPart(
        string id, HttpRequest request, ClaimsPrincipal user, UploadService uploads, CancellationToken cancellationToken)
    {
        var begun = await uploads.BeginPartAsync(user.WorkspaceIdOf(), id, cancellationToken);
        if (!begun.IsOk)
        {
            return begun.Error.ToResult();
        }
        using var ticket = begun.Value;
        var form = await MultipartUpload.ReadAsync(request, "data", uploads.StagePartAsync, cancellationToken);
        if (!form.IsOk)
        {
            return form.Error.ToResult();
        }
        await using var part = form.Value;
        var added = await uploads.AddPartAsync(ticket, part.Content, cancellationToken);
        return added.IsOk ? TypedResults.Ok(UploadPartObject.From(added.Value)) : added.Error.ToResult();
    }

    private static async Task<Results<Ok<UploadObject>, ErrorResult>> Complete(
        string id, HttpRequest request, ClaimsPrincipal user, UploadService uploads, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, MaxJsonBytes, cancellationToken);
        if (!body.IsOk)
        {
            return body.Error.ToResult();
        }
        var partIds = body.Value.Strings("part_ids");
        var md5 = body.Value.String("md5");
        var error = partIds.Error ?? md5.Error;
        if (error is not null)
        {
            return error.ToResult();
        }
        var completed = await uploads.CompleteAsync(user.WorkspaceIdOf(), id, partIds.Value, md5.Value, cancellationToken);
        return completed.IsOk ? TypedResults.Ok(UploadObject.From(completed.Value, withParts: false)) : completed.Error.ToResult();
    }

    private static async Task<Results<Ok<UploadObject>, ErrorResult>> Cancel(
        string id, ClaimsPrincipal user, UploadService uploads, CancellationToken cancellationToken)
    {
        var cancelled = await uploads.CancelAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return cancelled.IsOk ? TypedResults.Ok(UploadObject.From(cancelled.Value, withParts: false)) : cancelled.Error.ToResult();
    }
}
