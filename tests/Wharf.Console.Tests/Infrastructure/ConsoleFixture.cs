using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Wharf.Console.Tests.Infrastructure;

/// <summary>
/// One Wharf server and one headless Chromium for the console tests: the system's Chromium (Debian's
/// <c>chromium</c>, whose path ./test.sh exports as <c>WHARF_TEST_CHROMIUM</c>), driven by Playwright's own driver
/// from its NuGet package, so that nothing is downloaded. A machine without it fails the tests: they are never
/// skipped.
/// </summary>
public sealed partial class ConsoleFixture : IAsyncLifetime
{
    public const string ChromiumVariable = "WHARF_TEST_CHROMIUM";

    private IPlaywright? _playwright;

    public ConsoleServer Server { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where each test saves a screenshot of each page it visits (git-ignored).</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(Wharf.Server.Tests.Infrastructure.WharfServer.RepositoryRoot, "TestResults", "console-screenshots");

    public async Task InitializeAsync()
    {
        string chromium = Environment.GetEnvironmentVariable(ChromiumVariable) is { Length: > 0 } set ? set
            : File.Exists("/usr/bin/chromium") ? "/usr/bin/chromium"
            : throw new InvalidOperationException(
                $"The console tests need Chromium: set {ChromiumVariable} to its executable, or run ./test.sh, which installs Debian's chromium.");
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"{ChromiumVariable} names {chromium}, which does not exist.");
        }
        Directory.CreateDirectory(ScreenshotDirectory);
        // Generous waits: the suite runs beside the other test projects on a small machine. A wait only ends early.
        Assertions.SetDefaultExpectTimeout(15_000);
        Server = await ConsoleServer.StartAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = chromium, Headless = true });
    }

    /// <summary>
    /// A fresh browser context (its own session storage) with a page on the console; every message the page logs as
    /// an error (a script error, a Content-Security-Policy violation) is collected for the test to check.
    /// </summary>
    public async Task<ConsolePage> OpenAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true, ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        var consolePage = new ConsolePage(context, page);
        await page.GotoAsync(Server.ConsoleAddress.ToString());
        return consolePage;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }
        _playwright?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }

    /// <summary>A file-name-safe form of a test's step name.</summary>
    public static string ScreenshotPath(string name) => Path.Combine(ScreenshotDirectory, Unsafe().Replace(name, "-") + ".png");

    [GeneratedRegex("[^A-Za-z0-9_-]+")]
    private static partial Regex Unsafe();
}

/// <summary>A page of the console in its own browser context, with what it reported as errors.</summary>
public sealed class ConsolePage : IAsyncDisposable
{
    private readonly List<string> _errors = [];
    private readonly List<string> _requests = [];

    public ConsolePage(IBrowserContext context, IPage page)
    {
        Context = context;
        Page = page;
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (_errors)
                {
                    _errors.Add(message.Text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (_errors)
            {
                _errors.Add("page error: " + error);
            }
        };
        page.Request += (_, request) =>
        {
            lock (_requests)
            {
                _requests.Add(request.Url);
            }
        };
        // Confirmations (delete, revoke) are accepted, as a user who means it would.
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
    }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    /// <summary>What the page logged as errors, besides the failed requests the browser logs for 4xx answers.</summary>
    public IReadOnlyList<string> ScriptErrors
    {
        get
        {
            lock (_errors)
            {
                return [.. _errors.Where(e => !e.StartsWith("Failed to load resource", StringComparison.Ordinal))];
            }
        }
    }

    /// <summary>Every URL the page requested.</summary>
    public IReadOnlyList<string> RequestedUrls
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    public async Task ScreenshotAsync(string name) =>
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = ConsoleFixture.ScreenshotPath(name), FullPage = true });

    public async Task SignInAsync(string key, bool admin = false)
    {
        await Page.GetByLabel("API key").FillAsync(key);
        await Page.GetByLabel(admin ? "Admin key" : "Workspace key").CheckAsync();
        await Page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    public async ValueTask DisposeAsync() => await Context.CloseAsync();
}
