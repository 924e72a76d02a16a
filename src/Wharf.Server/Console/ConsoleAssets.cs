using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace Wharf.Server.WebConsole;

/// <summary>
/// The web console at <c>/console</c>: a small hand-written page, script and style sheet built into the server
/// assembly as embedded resources (docs/decisions.md, "The web console"). The console is a client of the public API
/// like any other: its files are public (they hold no secret and no data), and every call they make carries the key
/// the user typed in, which the page keeps in the browser session only.
/// </summary>
/// <remarks>
/// The files are read once at start (a few tens of KB in all): no file system path is involved, so a published or
/// single-file server serves the same bytes, and a request path is only ever a key into this fixed set.
/// </remarks>
internal static class ConsoleAssets
{
    public const string Path = "/console";

    private const string ResourcePrefix = "console/";

    /// <summary>
    /// Scripts and styles from the console's own files only, no inline script or style, nothing framed, calls only
    /// to this origin: a script injected through data the console shows (a file name, metadata) cannot run.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    public static IEndpointRouteBuilder MapConsole(this IEndpointRouteBuilder app)
    {
        // /console/ is the page (the hash after it chooses the view: #/files, #/batches/batch_...); /console is sent
        // there, so that the page's relative links resolve under /console/. Routing matches both with one template.
        app.MapMethods(Path + "/{name?}", [HttpMethods.Get, HttpMethods.Head], (HttpContext context, string? name) => name is not null ? Serve(context, name)
            : context.Request.Path.Value!.EndsWith('/') ? Serve(context, "index.html")
            : TypedResults.Redirect(context.Request.PathBase + Path + "/", permanent: false)).ExcludeFromDescription();
        return app;
    }

    private static IResult Serve(HttpContext context, string name)
    {
        if (!Assets.TryGetValue(name, out var asset))
        {
            return TypedResults.NotFound(); // the envelope (UseEnvelopeForBareStatusCodes)
        }
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        // Revalidated on every load, so a new server version's console is never mixed with an old cached script.
        headers.CacheControl = "no-cache";
        headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch.ToString() == asset.ETag)
        {
            return TypedResults.StatusCode(StatusCodes.Status304NotModified);
        }
        return TypedResults.Bytes(asset.Content, asset.ContentType);
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(ConsoleAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }
            string name = resource[ResourcePrefix.Length..];
            byte[] content = Read(assembly, resource);
            assets[name] = new Asset(content, ContentTypeOf(name), "\"" + Convert.ToHexStringLower(SHA256.HashData(content))[..32] + "\"");
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static byte[] Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string ContentTypeOf(string name) => System.IO.Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };

    private sealed record Asset(byte[] Content, string ContentType, string ETag);
}
