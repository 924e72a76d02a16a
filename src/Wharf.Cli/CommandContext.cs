using System.CommandLine;
using System.Net;
using Wharf.Cli.Http;

namespace Wharf.Cli;

/// <summary>The options every command takes (<c>--url</c>, the keys, <c>--json</c>), each also read from the environment.</summary>
internal static class GlobalOptions
{
    public static readonly Option<string?> Url = new("--url")
    {
        Description = "The server's address, with or without /v1 [env: WHARF_URL; default: " + ServerAddress.DefaultUrl + "]",
        Recursive = true,
    };

    public static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = "A workspace API key [env: WHARF_API_KEY]",
        Recursive = true,
    };

    public static readonly Option<string?> AdminKey = new("--admin-key")
    {
        Description = "The server's admin key, for 'wharf admin' [env: WHARF_ADMIN_KEY]",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print the result as exactly one JSON document on stdout",
        Recursive = true,
    };

    public static void AddTo(RootCommand root)
    {
        root.Options.Add(Url);
        root.Options.Add(ApiKey);
        root.Options.Add(AdminKey);
        root.Options.Add(Json);
    }
}

/// <summary>What a command works with: the server's client and how to print.</summary>
internal sealed record CommandContext(WharfClient Client, bool Json)
{
    /// <summary>One connection pool for the process; no overall timeout (a transfer takes what it takes).</summary>
    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(30),
        AutomaticDecompression = DecompressionMethods.None,
        AllowAutoRedirect = false,
        UseCookies = false,
        MaxConnectionsPerServer = 16,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { { "User-Agent", "wharf-cli" } },
    };

    public static Outcome<CommandContext> From(ParseResult parse)
    {
        string url = FirstSet(parse.GetValue(GlobalOptions.Url), Environment.GetEnvironmentVariable("WHARF_URL")) ?? ServerAddress.DefaultUrl;
        var address = ServerAddress.Parse(url);
        if (!address.IsOk)
        {
            return address.Failure!;
        }
        string? apiKey = FirstSet(parse.GetValue(GlobalOptions.ApiKey), Environment.GetEnvironmentVariable("WHARF_API_KEY"));
        string? adminKey = FirstSet(parse.GetValue(GlobalOptions.AdminKey), Environment.GetEnvironmentVariable("WHARF_ADMIN_KEY"));
        return new CommandContext(new WharfClient(Http, address.Value, apiKey, adminKey), parse.GetValue(GlobalOptions.Json));
    }

    private static string? FirstSet(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim();
}
