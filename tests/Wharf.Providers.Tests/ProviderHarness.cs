using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Providers;

namespace Wharf.Providers.Tests;

/// <summary>
/// The providers as the server composes them (<c>AddWharfProviders</c> over a configuration), with a fake clock and
/// every log line captured.
/// </summary>
internal sealed class ProviderHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private ProviderHarness(ServiceProvider services, FakeTimeProvider time, CapturedLogs logs)
    {
        _services = services;
        Time = time;
        Logs = logs;
    }

    public FakeTimeProvider Time { get; }

    public CapturedLogs Logs { get; }

    public IServiceProvider Services => _services;

    public IProviderRegistry Registry => _services.GetRequiredService<IProviderRegistry>();

    public IProvider this[string id] => Registry.TryGet(id, out var provider) ? provider.Provider : throw new KeyNotFoundException(id);

    /// <summary>Configuration as <c>key=value</c> pairs below <c>Wharf:Providers:</c>, e.g. <c>("openai:Type", "openai")</c>.</summary>
    public static ProviderHarness Start(params (string Key, string? Value)[] providers)
    {
        var pairs = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in providers)
        {
            pairs["Wharf:Providers:" + key] = value; // a later pair replaces an earlier one
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(pairs).Build();
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var logs = new CapturedLogs();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton<TimeProvider>(time)
            .AddLogging(logging => logging.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddWharfProviders();
        return new ProviderHarness(services.BuildServiceProvider(), time, logs);
    }

    /// <summary>The start-time validation's verdict: the failure messages, empty when the configuration is good.</summary>
    public static IReadOnlyList<string> ValidationFailures(params (string Key, string? Value)[] providers)
    {
        var harness = Start(providers);
        try
        {
            _ = harness._services.GetRequiredService<IOptions<ProvidersOptions>>().Value;
            return [];
        }
        catch (OptionsValidationException e)
        {
            return [.. e.Failures];
        }
        finally
        {
            harness._services.Dispose();
        }
    }

    /// <summary>Advances the fake clock by <paramref name="step"/> until <paramref name="task"/> ends (timers armed late are caught too).</summary>
    public async Task<T> AdvanceUntilDoneAsync<T>(Task<T> task, TimeSpan step)
    {
        for (int i = 0; i < 1000 && !task.IsCompleted; i++)
        {
            Time.Advance(step);
            await Task.WhenAny(task, Task.Delay(5));
        }
        return await task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync() => await _services.DisposeAsync();
}

/// <summary>Every log line written, formatted, with its exception.</summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}
