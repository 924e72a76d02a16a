using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Errors;
using Wharf.Server.Auth;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Api;

/// <summary>The Batches API: create, list, read and cancel; the batch engine runs what is created.</summary>
internal static class BatchesApi
{
    private const int MaxJsonBytes = 64 * 1024;

    public static RouteGroupBuilder MapBatchesApi(this RouteGroupBuilder api)
    {
        var read = api.MapGroup("/batches").RequireScope(ApiScopes.BatchesRead).WithTags("Batches");
        read.MapGet("/", List).WithSummary("List the workspace's batches, newest first").Produces<BatchList>(StatusCodes.Status200OK, "application/json")
            .WithQuery(("limit", "1 to 100 (default 20)"), ("after", "a batch id: the batches after it"));
        read.MapGet("/{id}", Get).WithSummary("Retrieve a batch");

        var write = api.MapGroup("/batches").RequireScope(ApiScopes.BatchesWrite).WithTags("Batches").WithMetadata(ErrorResponses.Upstream);
        write.MapPost("/", Create).WithSummary("Create a batch from a JSONL input file").Accepts<BatchCreateBody>("application/json");
        write.MapPost("/{id}/cancel", Cancel).WithSummary("Cancel a batch");
        return api;
    }

    private static async Task<Results<Ok<BatchObject>, ErrorResult>> Create(
        HttpContext context, BatchService batches, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(context.Request, MaxJsonBytes, cancellationToken);
        if (!body.IsOk)
        {
            return body.Error.ToResult();
        }
        var fields = body.Value;
        var inputFileId = fields.String("input_file_id");
        var endpoint = fields.String("endpoint");
        var window = fields.String("completion_window");
        var execution = fields.String("execution");
        var provider = fields.String("provider");
        var expiresAfter = fields.Object("output_expires_after");
        var anchor = expiresAfter.Value?.String("anchor") ?? default;
        var seconds = expiresAfter.Value?.Int64("seconds") ?? default;
        var error = inputFileId.Error ?? endpoint.Error ?? window.Error ?? execution.Error ?? provider.Error
            ?? expiresAfter.Error ?? Nested(anchor.Error) ?? Nested(seconds.Error);
        if (error is not null)
        {
            return error.ToResult();
        }
        if (expiresAfter.Value is not null && (anchor.Value is null || seconds.Value is null))
        {
            return WharfErrors.Invalid("output_expires_after", "'output_expires_after' must have an 'anchor' and 'seconds'.", "invalid_output_expires_after").ToResult();
        }
        var created = await batches.CreateAsync(context.WorkspaceOf(), new BatchCreateRequest
        {
            InputFileId = inputFileId.Value,
            Endpoint = endpoint.Value,
            CompletionWindow = window.Value,
            MetadataJson = fields.Raw("metadata"),
            OutputExpiresAfterAnchor = anchor.Value,
            OutputExpiresAfterSeconds = seconds.Value,
            Execution = execution.Value,
            Provider = provider.Value,
        }, cancellationToken);
        return created.IsOk ? TypedResults.Ok(BatchObject.From(created.Value)) : created.Error.ToResult();
    }

    private static WharfError? Nested(WharfError? error) =>
        error is null ? null : error with { Param = "output_expires_after." + error.Param };

    private static async Task<Results<JsonHttpResult<BatchList>, ErrorResult>> List(
        HttpRequest request, ClaimsPrincipal user, BatchService batches, CancellationToken cancellationToken)
    {
        int? limit = null;
        if (Single(request.Query, "limit") is { } text)
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed))
            {
                return WharfErrors.Invalid("limit", "Invalid 'limit': expected an integer between 1 and 100.", "invalid_limit").ToResult();
            }
            limit = parsed;
        }
        var page = await batches.ListAsync(user.WorkspaceIdOf(), limit, Single(request.Query, "after"), cancellationToken);
        return page.IsOk ? TypedResults.Json(BatchList.From(page.Value), WireJsonContext.Default.BatchList) : page.Error.ToResult();
    }

    private static async Task<Results<Ok<BatchObject>, ErrorResult>> Get(
        string id, ClaimsPrincipal user, BatchService batches, CancellationToken cancellationToken)
    {
        var batch = await batches.GetAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return batch.IsOk ? TypedResults.Ok(BatchObject.From(batch.Value)) : batch.Error.ToResult();
    }

    private static async Task<Results<Ok<BatchObject>, ErrorResult>> Cancel(
        string id, ClaimsPrincipal user, BatchService batches, CancellationToken cancellationToken)
    {
        var batch = await batches.CancelAsync(user.WorkspaceIdOf(), id, cancellationToken);
        return batch.IsOk ? TypedResults.Ok(BatchObject.From(batch.Value)) : batch.Error.ToResult();
    }

    private static string? Single(IQueryCollection query, string key) =>
        query.TryGetValue(key, out var values) ? values[^1] : null;
}
