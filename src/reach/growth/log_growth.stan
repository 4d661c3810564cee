// Web Appendix G, Stage 1: Bayesian multi-level logarithmic growth of daily impressions (Eqs. 17-23).
//
// Parameterisation (chosen to sample well with NUTS):
//  * a_ij, b_ij are CENTRED: every video has ~14 daily observations, so its likelihood pins a_ij and b_ij
//    far more tightly than the hierarchical prior does (the non-centred form would create a funnel here).
//  * hashtag intercepts and coefficient vectors are NON-CENTRED (alpha_0i = mu_alpha0 + sigma_alpha0 z0_i,
//    alpha_i = mu_alpha + sigma_alpha z_i, z ~ N(0, I)): once the covariates are in, hashtags differ little, so
//    sigma_alpha0 and sigma_alpha sit near zero, the classic funnel of the centred form.
//  * videos come sorted by hashtag (start[i] .. start[i] + size[i] - 1), so Eqs. 20-21 are evaluated as one
//    data-matrix x parameter-vector product per hashtag.
//  * y is divided by a per-video scale s_ij (data), so that exp(a - log s) is O(1): with scale "common" s is
//    one constant for all videos (Eq. 19 exactly: homoskedastic noise on the impression count); with scale
//    "per_video" s_ij is the video's last observed count, i.e. noise sd tau * s_ij (relative noise).
//  * the Gaussian likelihood of Eqs. 17/19 is evaluated EXACTLY through per-video sufficient statistics
//    (n, sum log t, sum log^2 t, sum y, sum y log t, sum y^2): sum_t (y - A log t - B)^2 is a quadratic in (A, B),
//    so each gradient costs O(videos) instead of O(video-days).
//  * every variance gets the "gamma prior on the inverse of the variance" of the paper, i.e. an
//    inverse-gamma prior on the variance; Stan samples the standard deviation, hence the Jacobian log(sigma).
data {
  int<lower=1> N;                          // videos j (each under its earliest hashtag i)
  int<lower=1> H;                          // hashtags i
  int<lower=1> K;                          // non-content covariates x^u_ij (standardised)
  int<lower=1> M;                          // video-day observations
  array[N] int<lower=1, upper=H> hashtag;  // i of video j (non-decreasing)
  array[H] int<lower=1, upper=N> start;    // first video of hashtag i
  array[H] int<lower=1, upper=N> size;     // videos of hashtag i
  matrix[N, K] X;                          // x^u_ij
  vector[N] y1;                            // standardised log y_ij1, the extra regressor of a_ij (Eq. 20)
  array[M] int<lower=1, upper=N> video;    // j of observation
  vector[M] log_t;                         // log t, t = 1 on the first day under the hashtag
  vector[M] y;                             // y_ijt / s_ij
  vector[N] log_s;                         // log s_ij
  real a_loc;                              // centre of the diffuse prior of mu_alpha0
  real b_loc;                              // centre of the diffuse prior of mu_beta0
  real<lower=0> prior_sd;                  // sd of the diffuse normal priors on all means
  real<lower=0> ig_shape;                  // inverse-gamma(shape, scale) on every variance
  real<lower=0> ig_scale;
}
transformed data {
  matrix[N, K + 1] Xa = append_col(X, y1);  // [x^u_ij, y_ij1] of Eq. 20
  vector[N] n_obs = rep_vector(0, N);
  vector[N] s_t = rep_vector(0, N);
  vector[N] s_tt = rep_vector(0, N);
  vector[N] s_y = rep_vector(0, N);
  vector[N] s_ty = rep_vector(0, N);
  vector[N] s_yy = rep_vector(0, N);
  for (m in 1:M) {
    int j = video[m];
    n_obs[j] += 1;
    s_t[j] += log_t[m];
    s_tt[j] += square(log_t[m]);
    s_y[j] += y[m];
    s_ty[j] += y[m] * log_t[m];
    s_yy[j] += square(y[m]);
  }
}
parameters {
  vector[N] a;                              // log growth rate a_ij
  vector[N] b;                              // log starting impression b_ij
  real<lower=0> tau;                        // Eq. 19
  real mu_alpha0;
  real mu_beta0;
  real<lower=0> sigma_alpha0;
  real<lower=0> sigma_beta0;
  vector[H] z_alpha0;
  vector[H] z_beta0;
  vector[K + 1] mu_alpha;                   // Eq. 22
  vector[K] mu_beta;                        // Eq. 23
  real<lower=0> sigma_alpha;
  real<lower=0> sigma_beta;
  matrix[H, K + 1] z_alpha;
  matrix[H, K] z_beta;
  vector<lower=0>[H] sigma_a;               // sigma_alpha,i of Eq. 20
  vector<lower=0>[H] sigma_b;               // sigma_beta,i of Eq. 21
}
transformed parameters {
  vector[H] alpha0 = mu_alpha0 + sigma_alpha0 * z_alpha0;                     // alpha_0i (non-centred)
  vector[H] beta0 = mu_beta0 + sigma_beta0 * z_beta0;                         // beta_0i (non-centred)
  matrix[H, K + 1] alpha = rep_matrix(mu_alpha', H) + sigma_alpha * z_alpha;  // Eq. 22 (non-centred)
  matrix[H, K] beta = rep_matrix(mu_beta', H) + sigma_beta * z_beta;          // Eq. 23 (non-centred)
}
model {
  vector[N] A = exp(a - log_s);             // Eq. 18, in units of s_ij
  vector[N] B = exp(b - log_s);
  // Eqs. 17, 19: y_ijt ~ N(A log t + B, tau^2), summed over t via the sufficient statistics
  vector[N] rss = s_yy - 2 * A .* s_ty - 2 * B .* s_y + square(A) .* s_tt + 2 * A .* B .* s_t + square(B) .* n_obs;
  target += -M * log(tau) - 0.5 * sum(rss) / square(tau);
  for (i in 1:H) {
    int s = start[i];
    int e = start[i] + size[i] - 1;
    a[s:e] ~ normal(alpha0[i] + Xa[s:e] * alpha[i]', sigma_a[i]);  // Eq. 20
    b[s:e] ~ normal(beta0[i] + X[s:e] * beta[i]', sigma_b[i]);     // Eq. 21
  }
  z_alpha0 ~ std_normal();
  z_beta0 ~ std_normal();
  to_vector(z_alpha) ~ std_normal();
  to_vector(z_beta) ~ std_normal();
  mu_alpha0 ~ normal(a_loc, prior_sd);
  mu_beta0 ~ normal(b_loc, prior_sd);
  mu_alpha ~ normal(0, prior_sd);
  mu_beta ~ normal(0, prior_sd);
  // 1 / variance ~ gamma  <=>  variance ~ inverse-gamma; + log(sigma) is the Jacobian of sigma -> sigma^2
  target += inv_gamma_lpdf(square(tau) | ig_shape, ig_scale) + log(tau);
  target += inv_gamma_lpdf(square(sigma_alpha0) | ig_shape, ig_scale) + log(sigma_alpha0);
  target += inv_gamma_lpdf(square(sigma_beta0) | ig_shape, ig_scale) + log(sigma_beta0);
  target += inv_gamma_lpdf(square(sigma_alpha) | ig_shape, ig_scale) + log(sigma_alpha);
  target += inv_gamma_lpdf(square(sigma_beta) | ig_shape, ig_scale) + log(sigma_beta);
  target += inv_gamma_lpdf(square(sigma_a) | ig_shape, ig_scale) + sum(log(sigma_a));
  target += inv_gamma_lpdf(square(sigma_b) | ig_shape, ig_scale) + sum(log(sigma_b));
}
