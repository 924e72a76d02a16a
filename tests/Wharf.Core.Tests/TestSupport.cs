namespace Wharf.Core.Tests;

/// <summary>A clock that always answers the same instant.</summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}

/// <summary>A clock whose every reading is one millisecond earlier than the one before.</summary>
internal sealed class BackwardsTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _next = start;

    public override DateTimeOffset GetUtcNow()
    {
        var now = _next;
        _next = _next.AddMilliseconds(-1);
        return now;
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

internal static class ResultAssertions
{
    /// <summary>The result's error, after asserting that it is one.</summary>
    public static Wharf.Core.Errors.WharfError ErrorOf<T>(this Wharf.Core.Errors.Result<T> result)
    {
        Assert.False(result.IsOk, "Expected an error result.");
        return result.Error;
    }
}
