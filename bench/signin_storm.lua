-- wrk script: a storm of correct sign-ins (form posts with our Origin), each making a session.
wrk.method = "POST"
wrk.body = "email=storm%40example.com&password=correct+horse+battery+staple"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
