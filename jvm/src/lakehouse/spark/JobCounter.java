package lakehouse.spark;

import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.spark.SparkContext;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * Counts Spark jobs, stages, tasks and shuffle bytes per job group.
 *
 * <p>The pipeline runs each of its stages under a job group of its own ({@code
 * RunContext.stage}); when the stage ends it takes that group's counts. Unlike the status
 * tracker, nothing here is forgotten after {@code spark.ui.retainedJobs} jobs.
 */
public class JobCounter extends SparkListener {
  public static final int JOBS = 0;
  public static final int STAGES = 1;
  public static final int TASKS = 2;
  public static final int SHUFFLE_READ_BYTES = 3;
  public static final int SHUFFLE_WRITE_BYTES = 4;
  private static final String GROUP = "spark.jobGroup.id";
  private static JobCounter installed;

  private final SparkContext context;
  private final Map<String, long[]> counts = new HashMap<>();
  private final Map<Integer, String> stageGroups = new HashMap<>();

  private JobCounter(SparkContext context) {
    this.context = context;
  }

  /** The counter listening on {@code sc}, registered on first use. */
  public static synchronized JobCounter install(SparkContext sc) {
    if (installed == null || installed.context != sc) {
      installed = new JobCounter(sc);
      sc.addSparkListener(installed);
    }
    return installed;
  }

  private static String group(Properties properties) {
    return properties == null ? null : properties.getProperty(GROUP);
  }

  private long[] of(String group) {
    return counts.computeIfAbsent(group, g -> new long[5]);
  }

  @Override
  public synchronized void onJobStart(SparkListenerJobStart event) {
    String g = group(event.properties());
    if (g != null) {
      of(g)[JOBS] += 1;
    }
  }

  @Override
  public synchronized void onStageSubmitted(SparkListenerStageSubmitted event) {
    String g = group(event.properties());
    if (g != null) {
      stageGroups.put(event.stageInfo().stageId(), g);
      of(g)[STAGES] += 1;
    }
  }

  @Override
  public synchronized void onTaskEnd(SparkListenerTaskEnd event) {
    String g = stageGroups.get(event.stageId());
    if (g == null) {
      return;
    }
    long[] c = of(g);
    c[TASKS] += 1;
    TaskMetrics m = event.taskMetrics();
    if (m != null) {
      c[SHUFFLE_READ_BYTES] += m.shuffleReadMetrics().totalBytesRead();
      c[SHUFFLE_WRITE_BYTES] += m.shuffleWriteMetrics().bytesWritten();
    }
  }

  /**
   * The counts of {@code group} (jobs, stages, tasks, shuffle bytes read, written), forgotten
   * here once taken. Waits up to {@code waitMillis} for the listener bus to deliver the
   * events of jobs that have already finished.
   */
  public long[] take(String group, long waitMillis) {
    try {
      context.listenerBus().waitUntilEmpty(waitMillis);
    } catch (Exception timedOut) {
      // counts so far: a busy bus must not hold the pipeline up
    }
    synchronized (this) {
      long[] c = counts.remove(group);
      stageGroups.values().removeIf(group::equals);
      return c == null ? new long[5] : c;
    }
  }
}
