using System.Diagnostics.CodeAnalysis;

namespace Wharf.Core.Providers;

/// <summary>What an upstream call gave: a value, or an <see cref="UpstreamFailure"/> (never both, never neither).</summary>
public readonly struct UpstreamOutcome<T>
{
    private readonly T? _value;

    private UpstreamOutcome(T? value, UpstreamFailure? failure)
    {
        _value = value;
        Failure = failure;
    }

    public UpstreamFailure? Failure { get; }

    [MemberNotNullWhen(false, nameof(Failure))]
    public bool IsOk => Failure is null;

    public T Value => Failure is null ? _value! : throw new InvalidOperationException("The upstream call failed.");

    public static implicit operator UpstreamOutcome<T>(T value) => new(value, null);

    public static implicit operator UpstreamOutcome<T>(UpstreamFailure failure) =>
        new(default, failure ?? throw new ArgumentNullException(nameof(failure)));
}
