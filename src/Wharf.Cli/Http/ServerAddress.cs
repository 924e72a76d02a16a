namespace Wharf.Cli.Http;

/// <summary>
/// Where the server is: <c>WHARF_URL</c> or <c>--url</c>, given with or without <c>/v1</c> (as an SDK's base URL is).
/// The API lives under <c>{root}/v1/</c>, the admin API under <c>{root}/admin/</c>.
/// </summary>
internal sealed record ServerAddress(Uri Root)
{
    public const string DefaultUrl = "http://127.0.0.1:8080";

    public Uri Api(string path) => new(Root, "v1/" + path);

    public Uri Admin(string path) => new(Root, "admin/" + path);

    public static Outcome<ServerAddress> Parse(string text)
    {
        if (!Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            return CliFailure.Usage($"'{text}' is not a server address.", "Give WHARF_URL or --url as http(s)://host:port, with or without /v1.");
        }
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            return CliFailure.Usage($"'{text}' has a query or fragment; a server address has none.");
        }
        string path = uri.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v1", StringComparison.Ordinal))
        {
            path = path[..^"/v1".Length];
        }
        return new ServerAddress(new UriBuilder(uri) { Path = path + "/" }.Uri);
    }
}
